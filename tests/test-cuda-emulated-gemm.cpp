/* test-cuda-emulated-gemm.cpp: gpu/bl-cuda-gemm-kernels.cu compiled for the CPU
 * (cuda-emu/bl-cuda-emu-threads.h), for tests/test-cuda-emulated.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "bl-cuda-emu-threads.h"

#include "bl-cuda-gemm-kernels.cu"
