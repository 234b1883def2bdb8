// Native unit tests: devices driven through their register interfaces, without KVM.
// Built by binding.gyp (target native_tests) against the same static VMM library as
// the addon; npm test runs build/Release/native_tests.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
