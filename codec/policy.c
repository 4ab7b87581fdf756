/*
 * The default import policy's exact-keeping rules (include/tstore.h, "The import policy"): the
 * tensors `tstore import` and Python's save_file() never quantize under codec "auto", and how a
 * tensor kept exact is stored. One table for both, so that they store the same tensors the
 * same way.
 *
 * Why these tensors: NVIDIA's ModelOpt quantizes the linear layers of the transformer blocks
 * and keeps the token embedding, the output projection (lm_head) and MoE routers in high
 * precision by default: an embedding row is read whole for one token (no averaging of errors
 * across a dot product), the output projection decides the token probabilities directly, and a
 * router's small logits choose experts, where a flipped choice is a large error. The patterns
 * cover the names of the common families (Llama/Mistral/Qwen `embed_tokens`, GPT-2 `wte`, BLOOM
 * `word_embeddings`, GPT-NeoX `embed_out`, GGUF-style `output.weight`, Mixtral/Qwen-MoE
 * `mlp.gate`, and `router` of others).
 *
 * Invariant: a name matching several rules is reported under the first (order of the table).
 */
#include "config.h"

#include <fnmatch.h>
#include <stddef.h>

#include "common/error.h"

static const struct rule {
	const char *glob;
	const char *reason;
} rules[] = {
	{"*embed_tokens*", "token embedding"},
	{"*wte*", "token embedding"},
	{"*word_embeddings*", "token embedding"},
	{"lm_head*", "output projection"},
	{"embed_out*", "output projection"},
	{"output.weight", "output projection"},
	{"*.mlp.gate.weight", "MoE router"},
	{"*router*", "MoE router"},
};

TS_API const char *ts_policy_keep_reason(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		if (fnmatch(rules[i].glob, name, 0) == 0)
			return rules[i].reason;
	return NULL;
}

TS_API int ts_policy_exact_config(ts_codec_config *out, ts_dtype dtype)
{
	if (!out)
		return ts__err(TS_EINVAL, "ts_policy_exact_config: NULL argument");
	if (dtype != TS_F32 && dtype != TS_BF16 && dtype != TS_F16)
		return ts__err(TS_EINVAL, "ts_policy_exact_config: %s is not a floating-point dtype "
				   "a tensor is kept exact in (F32, BF16, F16)", ts_dtype_name(dtype));
	*out = ts_codec_config_default(TS_CODEC_LOSSLESS);
	out->raw_dtype = dtype;
	out->bits_per_value = (int)(8 * ts_dtype_size(dtype));
	return 0;
}
