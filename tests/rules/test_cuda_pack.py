"""The cuda pack names each CUDA error in its PyTorch, legacy THC and TensorFlow shapes."""

import pytest

from tests.rules.packcheck import assert_fires_first, assert_quiet
from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack
from watcher.types import FaultClass

MATCHER = RuleMatcher(load_pack("cuda"))

FATAL = [
    ("CudaIllegalAddress", "RuntimeError: CUDA error: an illegal memory access was encountered"),
    (
        "CudaIllegalAddress",
        "torch.AcceleratorError: CUDA error: an illegal memory access was encountered",
    ),
    (
        "CudaIllegalAddress",
        "THCudaCheck FAIL file=/pytorch/aten/src/THC/THCCachingHostAllocator.cpp line=265 "
        "error=77 : an illegal memory access was encountered",
    ),
    (
        "CudaIllegalAddress",
        "2023-03-02 17:40:11.905212: E tensorflow/stream_executor/cuda/cuda_event.cc:29] Error "
        "polling for event status: failed to query event: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal "
        "memory access was encountered",
    ),
    (
        "CudaIllegalAddress",
        "Epoch 3:  45%|████▌     | 450/1000 [01:02<01:16, 7.2it/s]\rRuntimeError: CUDA error: "
        "an illegal memory access was encountered",
    ),
    (
        "CudaIllegalAddress",
        "node-1:42:99 [3] NCCL WARN Cuda failure 'an illegal memory access was encountered'",
    ),
    ("CudaLaunchFailure", "[default1]:RuntimeError: CUDA error: unspecified launch failure"),
    (
        "CudaLaunchFailure",
        "F external/local_xla/xla/service/gpu/gpu_executable.cc:512] Check failed: "
        "stream->BlockHostUntilDone().ok() INTERNAL: CUDA_ERROR_LAUNCH_FAILED: unspecified "
        "launch failure",
    ),
    ("CudaMisalignedAddress", "RuntimeError: CUDA error: misaligned address"),
    ("CudaMisalignedAddress", "RuntimeError: Triton Error [CUDA]: misaligned address"),
    (
        "CudaMisalignedAddress",
        "RuntimeError: cuda runtime error (74) : misaligned address at /pytorch/aten/src/THC/"
        "THCCachingAllocator.cpp:507",
    ),
    ("CudaIllegalInstruction", "RuntimeError: CUDA error: an illegal instruction was encountered"),
    ("CudaIllegalInstruction", "RuntimeError: CUDA error: hardware stack error"),
    ("CudaDeviceAssert", "[rank0]: RuntimeError: CUDA error: device-side assert triggered"),
    (
        "CudaDeviceAssert",
        "/opt/pytorch/aten/src/ATen/native/cuda/Indexing.cu:1289: indexSelectLargeIndex: block: "
        "[208,0,0], thread: [64,0,0] Assertion `srcIndex < srcSelectDimSize` failed.",
    ),
    (
        "CudaDeviceAssert",
        "RuntimeError: cuda runtime error (59) : device-side assert triggered at /pytorch/aten/"
        "src/THC/generic/THCTensorMath.cu:26",
    ),
    ("CudaEccUncorrectable", "RuntimeError: CUDA error: uncorrectable ECC error encountered"),
    (
        "CudaEccUncorrectable",
        "E tensorflow/stream_executor/cuda/cuda_driver.cc:1018] failed to synchronize the stop "
        "event: CUDA_ERROR_ECC_UNCORRECTABLE: uncorrectable ECC error encountered",
    ),
    (
        "CudaDriverMismatch",
        "RuntimeError: The NVIDIA driver on your system is too old (found version 11040).",
    ),
    (
        "CudaDriverMismatch",
        "cudaGetDevice() failed. Status: CUDA driver version is insufficient for CUDA runtime "
        "version",
    ),
    (
        "CudaDriverMismatch",
        "UserWarning: CUDA initialization: Unexpected error from cudaGetDeviceCount(). Error 804: "
        "forward compatibility was attempted on non supported HW",
    ),
    ("CudaNoDevice", "0: RuntimeError: No CUDA GPUs are available"),
    (
        "CudaNoDevice",
        "cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorNoDevice: no CUDA-capable "
        "device is detected",
    ),
    (
        "CudaNoDevice",
        "numba.cuda.cudadrv.error.CudaSupportError: Error at driver init: Call to cuInit results "
        "in CUDA_ERROR_NO_DEVICE (100)",
    ),
    (
        "CudaNoKernelImage",
        "RuntimeError: CUDA error: no kernel image is available for execution on the device",
    ),
    (
        "CudaLibraryError",
        "RuntimeError: CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx( "
        "handle, opa, opb, m, n, k, &falpha, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb)`",
    ),
    ("CudaLibraryError", "RuntimeError: cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"),
    ("CudaLibraryError", "RuntimeError: CUDA error: CUBLAS_STATUS_INTERNAL_ERROR when calling x"),
    (
        "CudaLibraryError",
        "W tensorflow/core/framework/op_kernel.cc:1767] OP_REQUIRES failed at matmul_op.cc:480 : "
        "Internal: Blas GEMM launch failed : a.shape=(128, 784), b.shape=(784, 512)",
    ),
    (
        "CudaOutOfMemory",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
        "capacity of 79.11 GiB of which 1.06 GiB is free.",
    ),
    (
        "CudaOutOfMemory",
        "[rank1]: torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.53 GiB "
        "(GPU 1; 39.39 GiB total capacity; 35.02 GiB already allocated)",
    ),
    (
        "CudaOutOfMemory",
        "RuntimeError: cuda runtime error (2) : out of memory at /pytorch/aten/src/THC/generic/"
        "THCStorage.cu:58",
    ),
    (
        "CudaOutOfMemory",
        "THCudaCheck FAIL file=/pytorch/aten/src/THC/generic/THCStorage.cu line=58 error=2 : out "
        "of memory",
    ),
    (
        "CudaOutOfMemory",
        "W tensorflow/core/framework/op_kernel.cc:1745] OP_REQUIRES failed at conv_ops.cc:684 : "
        "RESOURCE_EXHAUSTED: OOM when allocating tensor with shape[64,256,128,128] and type float",
    ),
    (
        "CudaOutOfMemory",
        "ResourceExhaustedError (see above for traceback): OOM when allocating tensor of shape "
        "[1024,4096] and type float",
    ),
    ("CudaOutOfMemory", "terminate called after throwing an instance of 'c10::OutOfMemoryError'"),
    (
        "CudaOutOfMemory",
        "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
    ),
]

BENIGN = [
    "CUDA kernel errors might be asynchronously reported at some other API call, so the "
    "stacktrace below might be incorrect.",
    "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
    "Device-side assertions were explicitly omitted for this error check; the error probably "
    "arose while initializing the DSA handlers.",
    "E tensorflow/compiler/xla/stream_executor/cuda/cuda_driver.cc:268] failed call to cuInit: "
    "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected",
    "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic "
    "library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: "
    "No such file or directory",
    "E tensorflow/stream_executor/cuda/cuda_driver.cc:828] failed to allocate 14.41G "
    "(15473311744 bytes) from device: CUDA_ERROR_OUT_OF_MEMORY: out of memory",
    "W tensorflow/core/common_runtime/bfc_allocator.cc:239] Allocator (GPU_0_bfc) ran out of "
    "memory trying to allocate 2.14GiB with freed_by_count=0. The caller indicates that this is "
    "not a failure, but may mean that there could be performance gains if more memory were "
    "available.",
    "2023-01-12 04:42:03 | WARNING | fairseq.trainer | OOM: Ran out of memory with exception: "
    "CUDA out of memory. Tried to allocate 1.95 GiB (GPU 2; 31.75 GiB total capacity)",
    "E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:9261] Unable to register cuDNN "
    "factory: Attempting to register factory for plugin cuDNN when one has already been "
    "registered",
    "|            CUDA OOMs: 0            |        cudaMalloc retries: 3         |",
    "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
    "NOTE: CUDA Forward Compatibility mode ENABLED.",
    "[WARNING] cublasLt heuristic returned CUBLAS_STATUS_NOT_SUPPORTED for epilogue GELU; "
    "falling back to the unfused kernel",
]


@pytest.mark.parametrize(("reason", "line"), FATAL)
def test_fires_on_real_failure_lines(reason: str, line: str) -> None:
    assert_fires_first(MATCHER, reason, line)


@pytest.mark.parametrize("line", BENIGN)
def test_quiet_on_hints_and_startup_noise(line: str) -> None:
    assert_quiet(MATCHER, line)


def test_fault_classes() -> None:
    by_reason = {rule.reason: rule for rule in load_pack("cuda")}
    assert by_reason["CudaEccUncorrectable"].fault_class is FaultClass.HARDWARE
    assert by_reason["CudaDriverMismatch"].fault_class is FaultClass.INFRASTRUCTURE
    assert by_reason["CudaNoDevice"].fault_class is FaultClass.INFRASTRUCTURE
    for reason in ("CudaIllegalAddress", "CudaDeviceAssert", "CudaOutOfMemory"):
        assert by_reason[reason].fault_class is FaultClass.APPLICATION
    assert all(rule.count == 1 for rule in by_reason.values())
