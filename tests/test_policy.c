/*
 * ts_policy_keep_reason() and ts_policy_exact_config() (codec/policy.c): the names the default
 * import policy keeps exact, and how. The expected reasons are those docs/CLI.md ("Policy")
 * gives for each pattern, on tensor names of real model families; near misses (the dense MLP's
 * gate_proj, a gate's bias, names merely containing "output") stay quantizable.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tstore.h"

static void expect(const char *name, const char *reason)
{
	const char *got = ts_policy_keep_reason(name);
	if (!reason)
		cr_expect_null(got, "'%s' kept as %s", name, got);
	else
		cr_expect(got && !strcmp(got, reason), "'%s': got %s, want %s", name,
			  got ? got : "(quantizable)", reason);
}

Test(policy, token_embeddings_are_kept)
{
	expect("model.embed_tokens.weight", "token embedding");  /* Llama, Mistral, Qwen */
	expect("transformer.wte.weight", "token embedding");     /* GPT-2 */
	expect("word_embeddings.weight", "token embedding");     /* BLOOM */
	expect("transformer.word_embeddings.weight", "token embedding");
}

Test(policy, output_projections_are_kept)
{
	expect("lm_head.weight", "output projection");
	expect("embed_out.weight", "output projection");         /* GPT-NeoX */
	expect("output.weight", "output projection");            /* GGUF-style names */
}

Test(policy, moe_routers_are_kept)
{
	expect("model.layers.0.mlp.gate.weight", "MoE router");            /* Mixtral, Qwen-MoE */
	expect("model.layers.17.block_sparse_moe.router.weight", "MoE router");
	expect("transformer.h.3.moe.router.layer.weight", "MoE router");
}

Test(policy, other_tensors_are_quantizable)
{
	expect("model.layers.0.mlp.gate_proj.weight", NULL);
	expect("model.layers.0.mlp.up_proj.weight", NULL);
	expect("model.layers.0.mlp.gate.bias", NULL);
	expect("model.layers.0.self_attn.o_proj.weight", NULL);
	expect("model.layers.0.attention.output.dense.weight", NULL);
	expect("model.lm_head_norm.weight", NULL); /* lm_head* anchors at the start */
	expect("model.norm.weight", NULL);
}

Test(policy, exact_config_is_lossless_in_the_source_dtype)
{
	ts_codec_config c;
	cr_assert_eq(ts_policy_exact_config(&c, TS_BF16), 0);
	cr_assert_eq(c.codec, TS_CODEC_LOSSLESS);
	cr_assert_eq(c.raw_dtype, TS_BF16);
	cr_assert_eq(c.bits_per_value, 16);
	cr_assert_eq(ts_policy_exact_config(&c, TS_F32), 0);
	cr_assert_eq(c.codec, TS_CODEC_LOSSLESS);
	cr_assert_eq(c.raw_dtype, TS_F32);
	cr_assert_eq(c.bits_per_value, 32);
}

Test(policy, bad_arguments_are_refused)
{
	ts_codec_config c;
	cr_expect_null(ts_policy_keep_reason(NULL));
	cr_expect_eq(ts_policy_exact_config(NULL, TS_BF16), TS_EINVAL);
	cr_expect_eq(ts_policy_exact_config(&c, TS_I32), TS_EINVAL);
	cr_expect_eq(ts_policy_exact_config(&c, (ts_dtype)999), TS_EINVAL);
}
