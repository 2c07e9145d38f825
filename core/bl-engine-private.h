/* bl-engine-private.h: what the engine shares with its MoE feed-forward (bl-moe-forward.c)
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "bl-engine.h"

G_BEGIN_DECLS

/* One linear layer on the backend: y = x · wᵀ + bias. */
typedef struct
{
  char *name;
  BlLayerKind kind;
  int rows;                   /* output features */
  int cols;                   /* input features */
  BlBuffer *w;
  BlBuffer *bias;             /* NULL when the layer has none */
} BlEngineLinear;

/* A block's sparse MoE feed-forward and the scratch its forward pass needs, both defined in
 * bl-moe-forward.c. */
typedef struct _BlMoeMlp BlMoeMlp;
typedef struct _BlMoeScratch BlMoeScratch;

gboolean        bl_engine_load_linear  (BlEngine        *self,
                                        BlEngineLinear  *l,
                                        const char      *prefix,
                                        const char      *proj,
                                        BlLayerKind      kind,
                                        int              rows,
                                        int              cols,
                                        gboolean         has_bias,
                                        GError         **error);
void            bl_engine_clear_linear (BlEngine        *self,
                                        BlEngineLinear  *l);
gboolean        bl_engine_run_linear   (BlEngine        *self,
                                        BlEngineLinear  *l,
                                        int              block,
                                        BlBuffer        *y,
                                        BlBuffer        *x,
                                        int              n,
                                        gboolean         accumulate,
                                        GError         **error);
const BlEngineHooks *bl_engine_get_hooks (BlEngine      *self);

BlMoeMlp       *bl_moe_mlp_new         (BlEngine        *engine,
                                        int              block,
                                        GError         **error);
void            bl_moe_mlp_free        (BlEngine        *engine,
                                        BlMoeMlp        *mlp);
BlEngineLinear *bl_moe_mlp_find_linear (BlMoeMlp        *mlp,
                                        const char      *name);
void            bl_moe_scratch_free    (BlEngine        *engine,
                                        BlMoeScratch    *scratch);
gboolean        bl_moe_mlp_forward     (BlEngine        *engine,
                                        BlMoeMlp        *mlp,
                                        BlMoeScratch   **scratch,
                                        BlBuffer        *x,
                                        BlBuffer        *h,
                                        int              n,
                                        GError         **error);
int             bl_moe_widest_intermediate (const BlModelConfig *config);

G_END_DECLS
