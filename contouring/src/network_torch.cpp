// All LibTorch code of Isoline lives in this one file (torch headers are slow to compile).
#include <ATen/Parallel.h>
#include <sched.h>
#include <torch/csrc/jit/runtime/jit_exception.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "isoline/core/error.h"
#include "network.h"

namespace isoline::contouring::detail {

struct Network::Impl {
  torch::jit::script::Module module;
  torch::Device device{torch::kCPU};
};

bool torch_cuda_available() { return torch::cuda::is_available(); }

namespace {
// LibTorch sizes its CPU thread pool from the physical cores it detects, and on some machines
// (e.g. virtual CPUs reported as one core) that is 1 although more CPUs are available; with its
// OpenMP backend it also sets the calling thread's OpenMP default, so everything after the first
// network call in the process (the dose engine of `isoline run`) ran on one core. Unless the
// user chose with OMP_NUM_THREADS, use every CPU this process may run on.
void use_available_cpus() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("OMP_NUM_THREADS")) return;
    int n = static_cast<int>(std::thread::hardware_concurrency());
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
    if (n > 0) at::set_num_threads(n);
  });
}
}  // namespace

Network::Network(const std::string& path, core::Device device) : impl_(std::make_unique<Impl>()) {
  use_available_cpus();
  if (device == core::Device::CUDA) {
    if (!torch::cuda::is_available())
      core::fail<core::DeviceError>("contour", "--device cuda",
                                    "the linked LibTorch has no CUDA support or no GPU is visible "
                                    "(Debian's libtorch is CPU-only); use --device cpu");
    impl_->device = torch::Device(torch::kCUDA, 0);
  }
  try {
    impl_->module = torch::jit::load(path, impl_->device);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    core::fail<core::IoError>("load contouring model", path, what.substr(0, what.find('\n')));
  }
  impl_->module.eval();
}

Network::~Network() = default;

std::vector<float> Network::predict(const std::vector<float>& input,
                                    const std::vector<std::int64_t>& shape, int outputs) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  if (shape.size() < 3 || n != static_cast<std::int64_t>(input.size()))
    core::fail<core::InvalidInput>("contour", "network", "input does not match its shape");
  torch::NoGradGuard no_grad;
  c10::InferenceMode guard;
  auto x = torch::from_blob(const_cast<float*>(input.data()), shape, torch::kFloat32);
  if (impl_->device.is_cuda()) x = x.to(impl_->device);
  torch::Tensor y;
  try {
    y = impl_->module.forward({x}).toTensor();
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    core::fail<core::InvalidInput>("contour", "network", what.substr(0, what.find('\n')));
  } catch (const torch::jit::JITException& e) {
    // An exception raised by the module's own code: its last line is the Python one.
    std::string what = e.what();
    while (!what.empty() && what.back() == '\n') what.pop_back();
    core::fail<core::InvalidInput>("contour", "network", what.substr(what.rfind('\n') + 1));
  }
  y = torch::sigmoid(y.to(torch::kFloat32)).to(torch::kCPU).contiguous();
  std::vector<std::int64_t> expected = shape;
  expected[1] = outputs;
  if (y.sizes() != c10::IntArrayRef(expected))
    core::fail<core::InvalidInput>("contour", "network",
                                   "model output shape does not match its model card");
  std::vector<float> out(static_cast<std::size_t>(y.numel()));
  std::memcpy(out.data(), y.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

}  // namespace isoline::contouring::detail
