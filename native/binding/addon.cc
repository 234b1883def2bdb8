// Node-API surface of the VMM: one `Vm` object per machine, plus helpers for tests and
// the benchmark. Console output and the exit are marshalled to the JS thread through a
// single thread-safe function, so console bytes always arrive before the exit event.
#include "boot/linux_loader.h"
#include "firmware/bios_area.h"
#include "firmware/smbios/smbios.h"
#include "hv/hypervisor.h"
#include "snapshot/snapshot_file.h"
#include "util/error.h"
#include "vmm/board.h"
#include "vmm/machine.h"

#include <napi.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

namespace {

using hyve::ConsolePort;
using hyve::Machine;
using hyve::MachineConfig;
using hyve::MachineExit;

Napi::Error toJsError(Napi::Env env, const std::exception& e) {
  Napi::Error error = Napi::Error::New(env, e.what());
  if (auto* hyveError = dynamic_cast<const hyve::Error*>(&e)) {
    error.Set("code", Napi::String::New(env, hyve::errorCodeName(hyveError->code())));
  } else {
    error.Set("code", Napi::String::New(env, "HYVE_INTERNAL"));
  }
  return error;
}

// Reads an optional property with a type check that names the field on mismatch.
template <typename T>
std::optional<T> optionalField(const Napi::Object& object, const char* name);

template <>
std::optional<std::string> optionalField(const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  if (!value.IsString()) throw hyve::Error(hyve::ErrorCode::BadConfig, std::string(name) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

template <>
std::optional<double> optionalField(const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  if (!value.IsNumber()) throw hyve::Error(hyve::ErrorCode::BadConfig, std::string(name) + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

template <>
std::optional<bool> optionalField(const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  if (!value.IsBoolean()) throw hyve::Error(hyve::ErrorCode::BadConfig, std::string(name) + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

uint64_t wholeNumber(double value, const char* name, double max) {
  if (!(value >= 0) || value > max || value != static_cast<double>(static_cast<uint64_t>(value))) {
    throw hyve::Error(hyve::ErrorCode::BadConfig, std::string(name) + " must be a whole number between 0 and " +
                                                      std::to_string(static_cast<uint64_t>(max)));
  }
  return static_cast<uint64_t>(value);
}

// [{ slot, function, emulation, args }]: xhyve's -s list. Which emulations exist is the
// board's business (vmm/board.cc); this checks only the shape.
std::vector<hyve::PciDeviceSpec> parsePciDevices(const Napi::Value& value) {
  std::vector<hyve::PciDeviceSpec> specs;
  if (value.IsUndefined() || value.IsNull()) return specs;
  if (!value.IsArray()) throw hyve::Error(hyve::ErrorCode::BadConfig, "pciDevices must be an array");
  auto array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value item = array.Get(i);
    if (!item.IsObject()) throw hyve::Error(hyve::ErrorCode::BadConfig, "pciDevices entries must be objects");
    auto entry = item.As<Napi::Object>();
    hyve::PciDeviceSpec spec;
    spec.slot = static_cast<uint32_t>(wholeNumber(optionalField<double>(entry, "slot").value_or(-1), "pciDevices slot", 31));
    spec.function = static_cast<uint32_t>(
        wholeNumber(optionalField<double>(entry, "function").value_or(0), "pciDevices function", 7));
    spec.emulation = optionalField<std::string>(entry, "emulation").value_or("");
    spec.args = optionalField<std::string>(entry, "args").value_or("");
    specs.push_back(std::move(spec));
  }
  return specs;
}

// profile: { file, hz }: the guest profiler (symbols are resolved in TypeScript afterwards).
void parseProfile(const Napi::Value& value, MachineConfig& config) {
  if (value.IsUndefined() || value.IsNull()) return;
  if (!value.IsObject()) throw hyve::Error(hyve::ErrorCode::BadConfig, "profile must be an object { file, hz }");
  auto profile = value.As<Napi::Object>();
  config.profilePath = optionalField<std::string>(profile, "file").value_or("");
  if (config.profilePath.empty()) throw hyve::Error(hyve::ErrorCode::BadConfig, "profile.file is required");
  if (auto hz = optionalField<double>(profile, "hz")) {
    config.profileHz = static_cast<uint32_t>(wholeNumber(*hz, "profile.hz", 10000));
    if (config.profileHz == 0) throw hyve::Error(hyve::ErrorCode::BadConfig, "profile.hz must be at least 1");
  }
}

MachineConfig parseConfig(const Napi::Object& object) {
  MachineConfig config;
  parseProfile(object.Get("profile"), config);
  if (auto snapshot = optionalField<std::string>(object, "snapshot")) {
    // The machine comes from the snapshot; only restore options apply.
    config.snapshotPath = *snapshot;
    config.verifySnapshotMemory = optionalField<bool>(object, "verifySnapshotMemory").value_or(false);
    config.pciDevices = parsePciDevices(object.Get("pciDevices"));  // arguments for the snapshot's functions
    return config;
  }
  auto kernel = optionalField<std::string>(object, "kernel");
  if (!kernel || kernel->empty()) throw hyve::Error(hyve::ErrorCode::BadConfig, "kernel is required");
  config.kernelPath = *kernel;
  config.initrdPath = optionalField<std::string>(object, "initrd").value_or("");
  config.cmdline = optionalField<std::string>(object, "cmdline").value_or("");
  if (auto mib = optionalField<double>(object, "memoryMiB")) {
    config.memoryBytes = wholeNumber(*mib, "memoryMiB", 1 << 24) << 20;
  }
  if (auto cpus = optionalField<double>(object, "cpus")) config.cpus = static_cast<uint32_t>(wholeNumber(*cpus, "cpus", 1024));
  config.acpi = optionalField<bool>(object, "acpi").value_or(true);
  config.mpTable = optionalField<bool>(object, "mpTable").value_or(true);
  config.rtcUtc = optionalField<bool>(object, "rtcUtc").value_or(true);
  config.x2apic = optionalField<bool>(object, "x2apic").value_or(true);
  config.exitOnUnhandledIo = optionalField<bool>(object, "exitOnUnhandledIo").value_or(false);
  config.pvhEntry = optionalField<bool>(object, "pvhEntry").value_or(false);
  config.uuid = optionalField<std::string>(object, "uuid").value_or("");
  config.pciDevices = parsePciDevices(object.Get("pciDevices"));
  return config;
}

// Bytes and events produced on vCPU threads, waiting for the JS thread.
struct Outbox {
  std::mutex mutex;
  std::string console[2];
  std::vector<std::string> logs;
  std::optional<MachineExit> exit;
  bool scheduled = false;
};

class VmObject : public Napi::ObjectWrap<VmObject> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Vm",
                       {InstanceMethod<&VmObject::start>("start"), InstanceMethod<&VmObject::writeConsole>("writeConsole"),
                        InstanceMethod<&VmObject::stop>("stop"), InstanceMethod<&VmObject::stats>("stats"),
                        InstanceMethod<&VmObject::snapshot>("snapshot"),
                        InstanceMethod<&VmObject::close>("close")});
  }

  explicit VmObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VmObject>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "new Vm(config): config object required").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object options = info[0].As<Napi::Object>();
    try {
      MachineConfig config = parseConfig(options);
      Napi::Value onConsole = options.Get("onConsole");
      Napi::Value onLog = options.Get("onLog");
      if (onConsole.IsFunction()) onConsole_ = Napi::Persistent(onConsole.As<Napi::Function>());
      if (onLog.IsFunction()) onLog_ = Napi::Persistent(onLog.As<Napi::Function>());
      outbox_ = std::make_shared<Outbox>();
      tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "hyve-vm",
                                            0, 1);
      tsfn_.Unref(env);  // only a running VM keeps the process alive
      config.onConsoleOutput = [this](ConsolePort port, std::span<const uint8_t> bytes) {
        post([&](Outbox& box) { box.console[static_cast<uint32_t>(port)].append(bytes.begin(), bytes.end()); });
      };
      config.onLog = [this](const std::string& line) { post([&](Outbox& box) { box.logs.push_back(line); }); };
      machine_ = std::make_unique<Machine>(std::move(config));
    } catch (const std::exception& e) {
      if (tsfn_) tsfn_.Release();
      tsfn_ = {};
      toJsError(env, e).ThrowAsJavaScriptException();
    }
  }

  ~VmObject() override { shutdown(); }

 private:
  // Runs `fill` under the outbox lock and schedules one flush on the JS thread.
  template <typename Fill>
  void post(Fill&& fill) {
    bool schedule;
    {
      std::lock_guard lock(outbox_->mutex);
      fill(*outbox_);
      schedule = !outbox_->scheduled;
      outbox_->scheduled = true;
    }
    if (schedule && tsfn_) {
      tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function) { flush(env); });
    }
  }

  void flush(Napi::Env env) {
    std::string console[2];
    std::vector<std::string> logs;
    std::optional<MachineExit> exit;
    {
      std::lock_guard lock(outbox_->mutex);
      for (int i = 0; i < 2; ++i) console[i].swap(outbox_->console[i]);
      logs.swap(outbox_->logs);
      exit.swap(outbox_->exit);
      outbox_->scheduled = false;
    }
    Napi::HandleScope scope(env);
    for (const auto& line : logs) {
      if (!onLog_.IsEmpty()) onLog_.Call({Napi::String::New(env, line)});
    }
    for (uint32_t port = 0; port < 2; ++port) {
      if (!console[port].empty() && !onConsole_.IsEmpty()) {
        onConsole_.Call({Napi::Number::New(env, port), Napi::Buffer<char>::Copy(env, console[port].data(), console[port].size())});
      }
    }
    if (exit && !deferred_.empty()) {
      Napi::Object result = Napi::Object::New(env);
      static const char* names[] = {"poweroff", "error", "reboot", "triple-fault"};
      int code = static_cast<int>(exit->outcome);
      result.Set("outcome", Napi::String::New(env, names[code]));
      result.Set("code", Napi::Number::New(env, code));
      result.Set("message", Napi::String::New(env, exit->message));
      if (!exit->errorCode.empty()) result.Set("errorCode", Napi::String::New(env, exit->errorCode));
      auto deferred = std::move(deferred_.front());
      deferred_.clear();
      deferred.Resolve(result);
      tsfn_.Unref(env);
    }
  }

  Napi::Value start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!machine_ || started_) {
      Napi::Error::New(env, started_ ? "VM already started" : "VM is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    started_ = true;
    deferred_.push_back(Napi::Promise::Deferred::New(env));
    Napi::Promise promise = deferred_.back().Promise();
    tsfn_.Ref(env);
    machine_->start([this](const MachineExit& exit) { post([&](Outbox& box) { box.exit = exit; }); });
    return promise;
  }

  Napi::Value writeConsole(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!machine_ || info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) {
      Napi::TypeError::New(env, "writeConsole(port: 0|1, data: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint32_t port = info[0].As<Napi::Number>().Uint32Value();
    if (port > 1) {
      Napi::RangeError::New(env, "console port must be 0 (COM1) or 1 (COM2)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto buffer = info[1].As<Napi::Buffer<uint8_t>>();
    machine_->writeConsole(static_cast<ConsolePort>(port), {buffer.Data(), buffer.Length()});
    return env.Undefined();
  }

  // snapshot(dir): pauses the VM, writes it to `dir`, resumes it. Synchronous: the VM
  // child's JS thread has nothing else to do meanwhile. Console bytes from before the
  // pause are delivered to onConsole before this returns, so whatever the caller sends
  // next (e.g. "snapshot done") follows them.
  Napi::Value snapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!machine_ || info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, machine_ ? "snapshot(dir: string)" : "VM is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    try {
      // Flush while still paused: the outbox then holds exactly the bytes from before the
      // pause, and the first byte after it follows the caller's reply.
      hyve::SnapshotReport report = machine_->snapshot(info[0].As<Napi::String>().Utf8Value(), /*leavePaused=*/true);
      flush(env);
      machine_->resume();
      Napi::Object out = Napi::Object::New(env);
      out.Set("pauseMs", report.pauseMs);
      out.Set("saveMs", report.saveMs);
      out.Set("stateBytes", static_cast<double>(report.stateBytes));
      out.Set("memoryBytes", static_cast<double>(report.memoryBytes));
      out.Set("memoryAllocatedBytes", static_cast<double>(report.memoryAllocatedBytes));
      out.Set("configDigest", report.configDigest);
      return out;
    } catch (const std::exception& e) {
      toJsError(env, e).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }

  Napi::Value stop(const Napi::CallbackInfo& info) {
    if (machine_) machine_->stop();
    return info.Env().Undefined();
  }

  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!machine_) return env.Null();
    hyve::MachineStats s = machine_->stats();
    Napi::Object out = Napi::Object::New(env);
    out.Set("hypervisor", s.hypervisor);
    out.Set("pvm", s.pvm);
    out.Set("setupMs", s.setupMs);
    out.Set("firstRunMs", s.firstRunMs);
    out.Set("firstConsoleByteMs", s.firstConsoleByteMs);
    out.Set("kernelFormat", s.kernelFormat);
    out.Set("kernelCompression", s.kernelCompression);
    out.Set("bootPath", s.bootPath);
    out.Set("decompressMs", s.decompressMs);
    out.Set("restoreMs", s.restoreMs);
    out.Set("profileSamples", Napi::Number::New(env, static_cast<double>(s.profileSamples)));
    Napi::Array args = Napi::Array::New(env, s.addedKernelArguments.size());
    for (size_t i = 0; i < s.addedKernelArguments.size(); ++i) args.Set(i, s.addedKernelArguments[i]);
    out.Set("addedKernelArguments", args);
    Napi::Object exits = Napi::Object::New(env);
    for (const auto& [key, count] : s.exits) exits.Set(key, Napi::Number::New(env, static_cast<double>(count)));
    out.Set("exits", exits);
    return out;
  }

  Napi::Value close(const Napi::CallbackInfo& info) {
    shutdown();
    return info.Env().Undefined();
  }

  void shutdown() {
    if (machine_) {
      machine_->stop();
      machine_->wait();
      machine_.reset();
    }
    if (tsfn_) {
      tsfn_.Release();
      tsfn_ = {};
    }
  }

  std::unique_ptr<Machine> machine_;
  std::shared_ptr<Outbox> outbox_;
  Napi::ThreadSafeFunction tsfn_;
  Napi::FunctionReference onConsole_, onLog_;
  std::vector<Napi::Promise::Deferred> deferred_;
  bool started_ = false;
};

Napi::Value inspectKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "inspectKernel(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  try {
    hyve::KernelInfo k = hyve::inspectKernel(info[0].As<Napi::String>().Utf8Value());
    Napi::Object out = Napi::Object::New(env);
    out.Set("format", k.format);
    out.Set("compression", k.compression);
    out.Set("payloadBytes", static_cast<double>(k.payloadBytes));
    out.Set("decompressedBytes", static_cast<double>(k.decompressedBytes));
    out.Set("decompressMs", k.decompressMs);
    return out;
  } catch (const std::exception& e) {
    toJsError(env, e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// checkHypervisor(): opens the hypervisor as a VM would and says which it is, or throws
// with the VM's code (HYVE_NO_KVM, HYVE_KVM_ACCESS): milliseconds, so callers can fail
// before minutes of fixture building.
Napi::Value checkHypervisor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto hypervisor = hyve::hv::Hypervisor::open();
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", hypervisor->name());
    out.Set("emulatesGuestKernel", hypervisor->emulatesGuestKernel());
    return out;
  } catch (const std::exception& e) {
    toJsError(env, e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// inspectSnapshot(dir): the validated header of a snapshot (throws HYVE_BAD_SNAPSHOT).
// Reads only the state file; the memory file is checked for size, not content.
Napi::Value inspectSnapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "inspectSnapshot(dir: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  try {
    std::string dir = info[0].As<Napi::String>().Utf8Value();
    hyve::snapshot::Header h = hyve::snapshot::readStateFile(dir).header;
    Napi::Object out = Napi::Object::New(env);
    out.Set("hyveVersion", h.hyveVersion);
    out.Set("formatVersion", h.formatVersion);
    out.Set("backend", h.backend);
    out.Set("memoryMiB", static_cast<double>(h.memoryBytes >> 20));
    out.Set("cpus", h.cpus);
    out.Set("kernel", h.kernel.path);
    out.Set("initrd", h.initrd.path);
    out.Set("cmdline", h.cmdline);
    out.Set("savedAtMs", static_cast<double>(h.savedRealtimeNs) / 1e6);
    out.Set("configDigest", h.configDigest());
    Napi::Array sections = Napi::Array::New(env, h.sections.size());
    for (size_t i = 0; i < h.sections.size(); ++i) sections.Set(i, h.sections[i]);
    out.Set("sections", sections);
    return out;
  } catch (const std::exception& e) {
    toJsError(env, e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// snapshotDevices(dir): from one read of the state file, the snapshot's section names and
// its virtio-console functions, { sections, consoles: [{ slot, function, console, ports }] },
// so a restore can give each copy sockets of its own (throws HYVE_BAD_SNAPSHOT).
Napi::Value snapshotDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "snapshotDevices(dir: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  try {
    hyve::snapshot::StateFile file = hyve::snapshot::readStateFile(info[0].As<Napi::String>().Utf8Value());
    auto consoles = hyve::Board::consolesInSnapshot(file.sections);
    Napi::Array out = Napi::Array::New(env, consoles.size());
    for (size_t i = 0; i < consoles.size(); ++i) {
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("slot", consoles[i].function.slot);
      entry.Set("function", consoles[i].function.function);
      entry.Set("console", consoles[i].console);
      Napi::Array ports = Napi::Array::New(env, consoles[i].ports.size());
      for (size_t p = 0; p < consoles[i].ports.size(); ++p) ports.Set(p, consoles[i].ports[p]);
      entry.Set("ports", ports);
      out.Set(i, entry);
    }
    Napi::Array sections = Napi::Array::New(env, file.header.sections.size());
    for (size_t i = 0; i < file.header.sections.size(); ++i) sections.Set(i, file.header.sections[i]);
    Napi::Object devices = Napi::Object::New(env);
    devices.Set("sections", sections);
    devices.Set("consoles", out);
    return devices;
  } catch (const std::exception& e) {
    toJsError(env, e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// smbiosTables({ memoryMiB, cpus, uuid }): the SMBIOS entry points and table a VM with
// this configuration gets, with their guest addresses. For tests; no VM is created (the
// guest memory is only reserved, never touched).
Napi::Value smbiosTables(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "smbiosTables({ memoryMiB, cpus, uuid })").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  try {
    Napi::Object options = info[0].As<Napi::Object>();
    auto mib = optionalField<double>(options, "memoryMiB");
    auto cpus = optionalField<double>(options, "cpus");
    auto uuid = optionalField<std::string>(options, "uuid");
    if (!mib || !cpus || !uuid) throw hyve::Error(hyve::ErrorCode::BadConfig, "memoryMiB, cpus and uuid are required");
    hyve::GuestMemory memory(wholeNumber(*mib, "memoryMiB", 1 << 24) << 20);
    hyve::firmware::SmbiosConfig config;
    config.cpuCount = static_cast<uint32_t>(wholeNumber(*cpus, "cpus", 1024));
    config.uuid = hyve::firmware::parseUuid(*uuid);
    hyve::firmware::SmbiosTables tables = hyve::firmware::buildSmbiosTables(memory, config);
    auto buffer = [&](const std::vector<uint8_t>& bytes) { return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()); };
    Napi::Object out = Napi::Object::New(env);
    out.Set("entryPoint64", buffer(tables.entryPoint64));
    out.Set("entryPoint64Address", static_cast<double>(hyve::firmware::kSmbiosEntryPoint64));
    out.Set("entryPoint32", buffer(tables.entryPoint32));
    out.Set("entryPoint32Address", static_cast<double>(hyve::firmware::kSmbiosEntryPoint32));
    out.Set("table", buffer(tables.table));
    out.Set("tableAddress", static_cast<double>(hyve::firmware::kSmbiosTable));
    out.Set("structureCount", tables.structureCount);
    return out;
  } catch (const std::exception& e) {
    toJsError(env, e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// dieWithParent(parentPid): the kernel SIGKILLs this process when its parent goes
// (PR_SET_PDEATHSIG), even while native code blocks or the process is stopped, where the
// JavaScript 'disconnect' and signal handlers never run. Returns false if the parent
// (parentPid) has already gone: the caller exits. Linux sends the signal when the parent
// *thread* that forked this process ends; VM processes are forked from a Node thread that
// owns them, so that is when they should end too.
Napi::Value dieWithParent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "dieWithParent(parentPid: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    Napi::Error::New(env, std::string("prctl(PR_SET_PDEATHSIG): ") + std::strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // The parent may have died before the prctl() (no signal then): its orphan has been
  // re-parented, so the parent pid no longer matches.
  return Napi::Boolean::New(env, ::getppid() == info[0].As<Napi::Number>().Int32Value());
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("dieWithParent", Napi::Function::New(env, dieWithParent));
  exports.Set("Vm", VmObject::define(env));
  exports.Set("inspectSnapshot", Napi::Function::New(env, inspectSnapshot));
  exports.Set("checkHypervisor", Napi::Function::New(env, checkHypervisor));
  exports.Set("snapshotDevices", Napi::Function::New(env, snapshotDevices));
  exports.Set("version", Napi::String::New(env, hyve::snapshot::hyveVersion()));
  exports.Set("inspectKernel", Napi::Function::New(env, inspectKernel));
  exports.Set("smbiosTables", Napi::Function::New(env, smbiosTables));
  return exports;
}

}  // namespace

NODE_API_MODULE(hyve, init)
