/*
 * The import policy's exact-keeping rules (tools/cli/policy.c): which tensors the default `auto`
 * policy never quantizes, and the one place that decides how a tensor kept exact is stored.
 */
#ifndef TS_TOOLS_POLICY_H
#define TS_TOOLS_POLICY_H

#include "tstore.h"

/** Why the default policy keeps tensor @p name exact: "token embedding", "output projection" or
 *  "MoE router"; NULL if no rule names it. The rules are glob patterns on the whole name
 *  (fnmatch(3), '*' crossing dots), listed in tools/cli/policy.c and docs/CLI.md. */
const char *policy_keep_reason(const char *name);

/** The configuration of a floating-point tensor of @p dtype that is kept exact (--keep, 1-D,
 *  tiny, NaN/Inf, the rules above, --max-error 0; --codec lossless too): every such decision of
 *  `import` goes through here. The lossless codec in the source dtype; import rewrites the
 *  tensor raw where that would not be smaller (tiny or random tensors). */
ts_codec_config policy_exact_config(ts_dtype dtype);

#endif
