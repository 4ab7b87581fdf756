/*
 * The default import policy's exact-keeping rules.
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

#include "tools/cli/policy.h"

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

const char *policy_keep_reason(const char *name)
{
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		if (fnmatch(rules[i].glob, name, 0) == 0)
			return rules[i].reason;
	return NULL;
}

ts_codec_config policy_exact_config(ts_dtype dtype)
{
	ts_codec_config c = ts_codec_config_default(TS_CODEC_LOSSLESS);
	c.raw_dtype = dtype;
	c.bits_per_value = (int)(8 * ts_dtype_size(dtype));
	return c;
}
