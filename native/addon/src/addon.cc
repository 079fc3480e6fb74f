// The N-API surface of the hotbackup addon: flat functions, argument checks that say how to call
// them, long work on threads (never on the JavaScript thread). src/addon.ts declares the types and
// is the only module that loads this file.
//
//   crc32c(data: Uint8Array, crc?: number): number
//   crc32cCombine(crcA: number, crcB: number, lengthB: number): number
//   scanFiles(files: {path, pages?, system?}[], options: {threads?, segmentBytes?, bufferBytes?, mapCached?},
//             onProgress?: (bytes, files) => void): Promise<ScanResult[]>
//   shimInfo(): {loaded, served, path}
//   shimRequest(json: string): Promise<string>
#include <napi.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "control.h"
#include "crc32c.h"
#include "scan.h"

namespace {

#define USAGE_SCAN "Usage: scanFiles(files: {path: string, pages?: boolean, system?: boolean}[], options?: object, onProgress?: function)"

Napi::Error usage_error(Napi::Env env, const std::string &msg, const char *usage) {
  return Napi::TypeError::New(env, msg + "\n" + usage);
}

uint32_t to_u32(const Napi::Value &v, const char *name, const char *usage) {
  if (!v.IsNumber()) throw usage_error(v.Env(), std::string(name) + " must be a number", usage);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != double(uint64_t(d)))
    throw usage_error(v.Env(), std::string(name) + " must be an integer in [0, 2^32)", usage);
  return uint32_t(d);
}

Napi::Value Crc32c(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const char *usage = "Usage: crc32c(data: Uint8Array, crc?: number)";
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw usage_error(env, "data must be a Uint8Array or Buffer", usage);
  auto data = info[0].As<Napi::Uint8Array>();
  uint32_t crc = info.Length() > 1 && !info[1].IsUndefined() ? to_u32(info[1], "crc", usage) : 0;
  return Napi::Number::New(env, hb::crc32c_update(crc, data.Data(), data.ByteLength()));
}

Napi::Value Crc32cCombine(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const char *usage = "Usage: crc32cCombine(crcA: number, crcB: number, lengthB: number)";
  if (info.Length() < 3) throw usage_error(env, "three arguments expected", usage);
  uint32_t a = to_u32(info[0], "crcA", usage), b = to_u32(info[1], "crcB", usage);
  if (!info[2].IsNumber() || info[2].As<Napi::Number>().DoubleValue() < 0)
    throw usage_error(env, "lengthB must be a non-negative number", usage);
  uint64_t len = uint64_t(info[2].As<Napi::Number>().DoubleValue());
  return Napi::Number::New(env, hb::crc32c_combine(a, b, len));
}

const char *errno_name(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(e);
  if (n) return n;
#endif
  return "EIO";
}

struct ProgressData {
  double bytes;
  double files;
};

class ScanWorker : public Napi::AsyncWorker {
 public:
  ScanWorker(Napi::Env env, std::vector<hb::scan::FileResult> files, hb::scan::Options opts, Napi::Function progress)
      : Napi::AsyncWorker(env, "hotbackup:scanFiles"),
        m_deferred(Napi::Promise::Deferred::New(env)),
        m_files(std::move(files)),
        m_opts(opts) {
    if (!progress.IsEmpty()) {
      m_progress = Napi::ThreadSafeFunction::New(env, progress, "hotbackup:scanFiles progress", 0, 1);
      m_has_progress = true;
    }
  }

  Napi::Promise promise() { return m_deferred.Promise(); }

 protected:
  void Execute() override {
    hb::scan::Progress cb;
    if (m_has_progress) {
      cb = [this](uint64_t bytes, uint64_t files) {
        auto *d = new ProgressData{double(bytes), double(files)};
        napi_status st = m_progress.NonBlockingCall(d, [](Napi::Env env, Napi::Function fn, ProgressData *p) {
          if (env != nullptr && !fn.IsEmpty()) fn.Call({Napi::Number::New(env, p->bytes), Napi::Number::New(env, p->files)});
          delete p;
        });
        if (st != napi_ok) delete d;  // closing or full: a progress report may be dropped
      };
    }
    try {
      hb::scan::run(m_files, m_opts, cb);
    } catch (const std::exception &e) {
      SetError(std::string("scanFiles failed: ") + e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, m_files.size());
    for (size_t i = 0; i < m_files.size(); i++) out[i] = to_js(env, m_files[i]);
    release();
    m_deferred.Resolve(out);
  }

  void OnError(const Napi::Error &e) override {
    release();
    m_deferred.Reject(e.Value());
  }

 private:
  void release() {
    if (m_has_progress) {
      m_progress.Release();
      m_has_progress = false;
    }
  }

  static Napi::Object to_js(Napi::Env env, const hb::scan::FileResult &f) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", f.path);
    o.Set("size", Napi::Number::New(env, double(f.size)));
    o.Set("mode", Napi::Number::New(env, f.mode));
    o.Set("crc32c", Napi::Number::New(env, f.crc32c));
    if (f.err) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("code", errno_name(f.err));
      e.Set("message", f.err_message);
      o.Set("error", e);
    } else {
      o.Set("error", env.Null());
    }
    if (!f.pages || f.err) {
      o.Set("pages", env.Null());
      return o;
    }
    const hb::scan::PageReport &pr = f.pages_report;
    Napi::Object p = Napi::Object::New(env);
    p.Set("error", pr.error.empty() ? env.Null() : Napi::String::New(env, pr.error));
    p.Set("format", pr.format.valid ? Napi::String::New(env, pr.format.name) : env.Null());
    p.Set("flags", Napi::Number::New(env, pr.format.flags));
    p.Set("pageSize", Napi::Number::New(env, pr.format.logical_size));
    p.Set("physicalPageSize", Napi::Number::New(env, pr.format.physical_size));
    p.Set("pages", Napi::Number::New(env, double(pr.pages)));
    p.Set("zeroPages", Napi::Number::New(env, double(pr.zero_pages)));
    p.Set("skippedPages", Napi::Number::New(env, double(pr.skipped_pages)));
    p.Set("skipReason", pr.skip_reason.empty() ? env.Null() : Napi::String::New(env, pr.skip_reason));
    p.Set("badCount", Napi::Number::New(env, double(pr.bad_count)));
    p.Set("trailingBytes", Napi::Number::New(env, double(pr.trailing_bytes)));
    Napi::Array bad = Napi::Array::New(env, pr.bad.size());
    for (size_t i = 0; i < pr.bad.size(); i++) {
      Napi::Object b = Napi::Object::New(env);
      b.Set("page", Napi::Number::New(env, double(pr.bad[i].page)));
      b.Set("offset", Napi::Number::New(env, double(pr.bad[i].offset)));
      b.Set("reason", pr.bad[i].reason);
      bad[i] = b;
    }
    p.Set("badPages", bad);
    o.Set("pages", p);
    return o;
  }

  Napi::Promise::Deferred m_deferred;
  std::vector<hb::scan::FileResult> m_files;
  hb::scan::Options m_opts;
  Napi::ThreadSafeFunction m_progress;
  bool m_has_progress = false;
};

Napi::Value ScanFiles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw usage_error(env, "files must be an array", USAGE_SCAN);
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<hb::scan::FileResult> files(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr[i];
    if (!v.IsObject()) throw usage_error(env, "files[" + std::to_string(i) + "] must be an object", USAGE_SCAN);
    Napi::Object o = v.As<Napi::Object>();
    Napi::Value path = o.Get("path");
    if (!path.IsString() || path.As<Napi::String>().Utf8Value().empty())
      throw usage_error(env, "files[" + std::to_string(i) + "].path must be a non-empty string", USAGE_SCAN);
    files[i].path = path.As<Napi::String>().Utf8Value();
    files[i].pages = o.Get("pages").ToBoolean();
    files[i].system_space = o.Get("system").ToBoolean();
  }
  hb::scan::Options opts;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    if (o.Has("threads") && !o.Get("threads").IsUndefined()) opts.threads = to_u32(o.Get("threads"), "options.threads", USAGE_SCAN);
    if (o.Has("segmentBytes") && !o.Get("segmentBytes").IsUndefined())
      opts.segment_bytes = to_u32(o.Get("segmentBytes"), "options.segmentBytes", USAGE_SCAN);
    if (o.Has("bufferBytes") && !o.Get("bufferBytes").IsUndefined())
      opts.buffer_bytes = to_u32(o.Get("bufferBytes"), "options.bufferBytes", USAGE_SCAN);
    if (o.Has("mapCached") && !o.Get("mapCached").IsUndefined()) opts.map_cached = o.Get("mapCached").ToBoolean();
    // Tests only (HOTBACKUP_TEST_HOOKS=1): truncate each file to this many bytes once its segment
    // is mapped, before it is read, to prove that a file shrinking under verify is reported.
    const char *hooks = std::getenv("HOTBACKUP_TEST_HOOKS");
    if (hooks && std::strcmp(hooks, "1") == 0 && o.Has("testTruncateMappedTo")) {
      const off_t to = off_t(to_u32(o.Get("testTruncateMappedTo"), "options.testTruncateMappedTo", USAGE_SCAN));
      opts.test_before_mapped_read = [to](const std::string &path) { (void)::truncate(path.c_str(), to); };
    }
  } else if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    throw usage_error(env, "options must be an object", USAGE_SCAN);
  }
  if (opts.threads > 256) throw usage_error(env, "options.threads must be at most 256", USAGE_SCAN);
  Napi::Function progress;
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsFunction()) throw usage_error(env, "onProgress must be a function", USAGE_SCAN);
    progress = info[2].As<Napi::Function>();
  }
  auto *w = new ScanWorker(env, std::move(files), opts, progress);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value ShimInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  hb::control::Shim s = hb::control::find_shim();
  Napi::Object o = Napi::Object::New(env);
  o.Set("loaded", Napi::Boolean::New(env, s.loaded()));
  o.Set("served", s.is_served ? Napi::Value(Napi::Boolean::New(env, s.is_served() != 0)) : env.Null());
  o.Set("path", s.path.empty() ? env.Null() : Napi::String::New(env, s.path));
  return o;
}

class ControlWorker : public Napi::AsyncWorker {
 public:
  ControlWorker(Napi::Env env, hb::control::Shim shim, std::string req)
      : Napi::AsyncWorker(env, "hotbackup:shimRequest"),
        m_deferred(Napi::Promise::Deferred::New(env)),
        m_shim(std::move(shim)),
        m_request(std::move(req)) {}
  Napi::Promise promise() { return m_deferred.Promise(); }

 protected:
  void Execute() override {
    if (!hb::control::request(m_shim, m_request, m_reply)) SetError("hotbackup_request() returned NULL (out of memory)");
  }
  void OnOK() override { m_deferred.Resolve(Napi::String::New(Env(), m_reply)); }
  void OnError(const Napi::Error &e) override { m_deferred.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred m_deferred;
  hb::control::Shim m_shim;
  std::string m_request, m_reply;
};

Napi::Value ShimRequest(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const char *usage = "Usage: shimRequest(json: string), e.g. shimRequest('{\"op\":\"status\"}')";
  if (info.Length() < 1 || !info[0].IsString()) throw usage_error(env, "json must be a string", usage);
  hb::control::Shim s = hb::control::find_shim();
  if (!s.loaded()) {
    Napi::Error e = Napi::Error::New(env,
        "the hotbackup shim is not loaded in this process: hotbackup_request() was not found. Start this program "
        "with LD_PRELOAD=<path of libhotbackup.so> (`hotbackup lib-path` prints it) and HOTBACKUP_SERVE=<its "
        "executable name> to control backups from inside it");
    e.Set("code", "shim_not_loaded");
    throw e;
  }
  auto *w = new ControlWorker(env, std::move(s), info[0].As<Napi::String>().Utf8Value());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, Crc32c, "crc32c"));
  exports.Set("crc32cCombine", Napi::Function::New(env, Crc32cCombine, "crc32cCombine"));
  exports.Set("scanFiles", Napi::Function::New(env, ScanFiles, "scanFiles"));
  exports.Set("shimInfo", Napi::Function::New(env, ShimInfo, "shimInfo"));
  exports.Set("shimRequest", Napi::Function::New(env, ShimRequest, "shimRequest"));
  return exports;
}

}  // namespace

NODE_API_MODULE(hotbackup_addon, Init)
