{
  "variables": {
    "sanitize%": "<!(node -p \"process.env.HYVE_SANITIZE === '1' ? 1 : 0\")",
    "native_tests%": "<!(node -p \"require('fs').existsSync('test/native') ? 1 : 0\")"
  },
  "target_defaults": {
    "include_dirs": ["native"],
    "defines": ["HYVE_VERSION=<!(node -p \"JSON.stringify(require('./package.json').version)\")"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Werror", "-fexceptions", "-mcx16", "-fPIC"],
    "conditions": [
      ["sanitize==1", {
        # -O1 comes after node-gyp's -O3 and wins: ASan's recommended level, and instrumented
        # code at -O3 was most of the sanitized suite's time on 2 cores (about 7 minutes).
        "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-O1"],
        "ldflags": ["-fsanitize=address,undefined"]
      }]
    ]
  },
  "targets": [
    {
      "target_name": "hyve_vmm",
      "type": "static_library",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native', { recursive: true }).filter(f => f.endsWith('.cc') && !f.startsWith('binding/')).map(f => 'native/' + f).sort().join(' ')\")"
      ]
    },
    {
      "target_name": "hyve",
      "dependencies": ["hyve_vmm"],
      "sources": ["native/binding/addon.cc"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "libraries": ["-lZydis", "-lz", "-llzma", "-lzstd", "-llz4", "-lbz2", "-lslirp", "-lseccomp", "-lpthread"]
    },
    {
      # Device unit tests (test/native/): not in the npm package, so built only in a checkout.
      "target_name": "native_tests",
      "type": "executable",
      "dependencies": ["hyve_vmm"],
      "sources": [
        "<!@(node -p \"const fs = require('fs'); fs.existsSync('test/native') ? fs.readdirSync('test/native').filter(f => f.endsWith('.cc')).map(f => 'test/native/' + f).sort().join(' ') : ''\")"
      ],
      "libraries": ["-lZydis", "-lz", "-llzma", "-lzstd", "-llz4", "-lbz2", "-lslirp", "-lseccomp", "-lpthread"],
      "conditions": [
        ["native_tests==0", {"type": "none"}]
      ]
    }
  ]
}
