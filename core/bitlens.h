/* bitlens.h: the one header a front end includes
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "bl-error.h"
#include "bl-tensor.h"
#include "bl-tokenizer.h"
#include "bl-model.h"
#include "bl-backend.h"
#include "bl-engine.h"
#include "bl-protocol.h"
#include "bl-ppl.h"
#include "bl-store.h"
#include "bl-run.h"
#include "bl-format.h"
#include "bl-quant-plan.h"
#include "bl-quant-engine.h"
#include "bl-kl.h"
#include "bl-mc-item.h"
#include "bl-zeroshot.h"
#include "bl-sensitivity.h"
#include "bl-estimator.h"
#include "bl-calib.h"
#include "bl-quant-algo.h"
#include "bl-allocator.h"
#include "bl-scaling.h"
#include "bl-sweep.h"
#include "bl-export.h"
#include "bl-gguf.h"
#include "bl-moe.h"
