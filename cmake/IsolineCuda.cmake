# Decides whether CUDA kernels are built. Result: ISOLINE_WITH_CUDA (ON/OFF) and, when ON,
# the CUDA language enabled and CUDA::cudart available.
#   -DISOLINE_CUDA=AUTO  (default) build them when a working nvcc is found
#   -DISOLINE_CUDA=ON    require them (configure fails without nvcc)
#   -DISOLINE_CUDA=OFF   never build them; asking for --device cuda is then a clear run-time error
# dose/engine/CMakeLists.txt includes it too when configured on its own (cmake -S dose/engine),
# so it must not rely on anything else of this project.
set(ISOLINE_WITH_CUDA OFF)
string(TOUPPER "${ISOLINE_CUDA}" _isoline_cuda)
if(NOT _isoline_cuda STREQUAL "OFF")
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Ampere (A100) and Hopper (H100/H200); PTX for newer cards is JIT-compiled from sm_90.
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(ISOLINE_WITH_CUDA ON)
  elseif(_isoline_cuda STREQUAL "ON")
    message(FATAL_ERROR "ISOLINE_CUDA=ON but no working nvcc was found (set CMAKE_CUDA_COMPILER)")
  endif()
endif()
