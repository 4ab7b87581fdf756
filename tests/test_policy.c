/*
 * The import policy (codec/policy.c). ts_policy_keep_reason() and ts_policy_exact_config(): the
 * names the default policy keeps exact, and how; the expected reasons are those docs/CLI.md
 * ("Policy") gives for each pattern, on tensor names of real model families; near misses (the
 * dense MLP's gate_proj, a gate's bias, names merely containing "output") stay quantizable.
 * ts_policy_choose(), ts_policy_next() and ts_policy_sample_rows(): the decision tree as
 * docs/CLI.md and include/tstore.h describe it, rule by rule.
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

Test(policy, token_embeddings_are_written_by_rows)
{
	static const char *by_rows[] = {"model.embed_tokens.weight", "transformer.wte.weight",
					"transformer.word_embeddings.weight"};
	static const char *not[] = {"lm_head.weight", "model.layers.0.mlp.gate.weight",
				    "model.layers.0.self_attn.q_proj.weight", "output.weight"};
	for (size_t i = 0; i < sizeof by_rows / sizeof by_rows[0]; i++)
		cr_expect_eq(ts_policy_write_flags(by_rows[i]), TS_WRITE_ROWS, "%s", by_rows[i]);
	for (size_t i = 0; i < sizeof not / sizeof not[0]; i++)
		cr_expect_eq(ts_policy_write_flags(not[i]), 0, "%s", not[i]);
	cr_expect_eq(ts_policy_write_flags(NULL), 0);
}

Test(policy, bad_arguments_are_refused)
{
	ts_codec_config c;
	cr_expect_null(ts_policy_keep_reason(NULL));
	cr_expect_eq(ts_policy_exact_config(NULL, TS_BF16), TS_EINVAL);
	cr_expect_eq(ts_policy_exact_config(&c, TS_I32), TS_EINVAL);
	cr_expect_eq(ts_policy_exact_config(&c, (ts_dtype)999), TS_EINVAL);
}

/* ts_policy_choose() on a tensor of @p dtype and shape @p r x @p c (c 0: 1-D of r). */
static int choose(ts_codec_config *cfg, ts_policy_rule *rule, const char *name, ts_dtype dtype,
		  uint64_t r, uint64_t c, const ts_policy_opts *o)
{
	uint64_t shape[2] = {r, c};
	return ts_policy_choose(cfg, rule, name, dtype, c ? 2 : 1, shape, o);
}

Test(policy, choose_follows_the_documented_rules_in_order)
{
	ts_policy_opts o;
	ts_policy_rule rule;
	ts_codec_config c;

	ts_policy_opts_init(&o);
	cr_assert_eq(o.codec, -1);
	cr_assert_eq(o.max_error_pct, 10.0);
	cr_assert_eq(choose(&c, &rule, "a.weight", TS_I32, 64, 64, &o), 0);
	cr_expect_eq(rule, TS_POLICY_RAW_DTYPE);
	cr_expect(c.codec == TS_CODEC_RAW && c.raw_dtype == TS_I32 && c.bits_per_value == 32);
	cr_assert_eq(choose(&c, &rule, "lm_head.weight", TS_BF16, 4096, 4096, &o), 0);
	cr_expect_eq(rule, TS_POLICY_EXACT_NAME);
	cr_expect(c.codec == TS_CODEC_LOSSLESS && c.raw_dtype == TS_BF16);
	cr_assert_eq(choose(&c, &rule, "model.norm.weight", TS_F32, 4096, 0, &o), 0);
	cr_expect_eq(rule, TS_POLICY_EXACT_1D);
	cr_assert_eq(choose(&c, &rule, "small.weight", TS_F16, 64, 63, &o), 0); /* 4032 < 4096 */
	cr_expect_eq(rule, TS_POLICY_EXACT_TINY);
	cr_expect(c.codec == TS_CODEC_LOSSLESS && c.raw_dtype == TS_F16);
	cr_assert_eq(choose(&c, &rule, "small.weight", TS_F16, 64, 64, &o), 0);
	cr_expect_eq(rule, TS_POLICY_ANALYSE);
	cr_expect(c.codec == TS_CODEC_NVFP4 && c.max_error_pct == 10.0, "the analyser's input");
	o.nonfinite = 1;
	cr_assert_eq(choose(&c, &rule, "up.weight", TS_BF16, 64, 64, &o), 0);
	cr_expect_eq(rule, TS_POLICY_EXACT_NONFINITE);
	o.nonfinite = 0;
	o.flags = TS_POLICY_QUANTIZE_ALL;
	cr_assert_eq(choose(&c, &rule, "lm_head.weight", TS_BF16, 64, 64, &o), 0);
	cr_expect_eq(rule, TS_POLICY_ANALYSE, "--quantize-all: no exact-keeping by name");
	o.flags = 0;
	o.max_error_pct = 0;
	cr_assert_eq(choose(&c, &rule, "up.weight", TS_BF16, 64, 64, &o), 0);
	cr_expect_eq(rule, TS_POLICY_EXACT_BOUND);
	o.max_error_pct = 10;
	o.flags = TS_POLICY_KEEP;
	o.codec = TS_CODEC_NVFP4;
	cr_assert_eq(choose(&c, &rule, "up.weight", TS_BF16, 64, 64, &o), 0);
	cr_expect_eq(rule, TS_POLICY_KEPT, "--keep wins over --codec");
	cr_expect_eq(c.codec, TS_CODEC_LOSSLESS);
}

Test(policy, a_named_codec_applies_to_float_tensors_and_refuses_nan)
{
	ts_policy_opts o;
	ts_policy_rule rule;
	ts_codec_config c;

	ts_policy_opts_init(&o);
	o.codec = TS_CODEC_MXFP4;
	cr_assert_eq(choose(&c, &rule, "lm_head.weight", TS_BF16, 8, 0, &o), 0);
	cr_expect(rule == TS_POLICY_CODEC && c.codec == TS_CODEC_MXFP4 && c.block_size == 32);
	o.codec = TS_CODEC_RAW;
	cr_assert_eq(choose(&c, &rule, "w", TS_F16, 8, 8, &o), 0);
	cr_expect(rule == TS_POLICY_CODEC && c.codec == TS_CODEC_RAW && c.raw_dtype == TS_F16);
	o.codec = TS_CODEC_FP8;
	o.nonfinite = 3;
	cr_expect_eq(choose(&c, &rule, "w", TS_F32, 8, 8, &o), TS_ENONFINITE);
	cr_expect(strstr(ts_error_last(), "'w' holds 3 NaN or Inf"), "%s", ts_error_last());
	o.codec = TS_CODEC_LOSSLESS;
	cr_assert_eq(choose(&c, &rule, "w", TS_F32, 8, 8, &o), 0, "lossless encodes NaN");
	cr_expect(rule == TS_POLICY_CODEC && c.codec == TS_CODEC_LOSSLESS && c.raw_dtype == TS_F32);
	o.codec = TS_CODEC_NVFP4;
	cr_assert_eq(choose(&c, &rule, "ids", TS_I64, 8, 8, &o), 0, "integers: no scan, raw");
	cr_expect_eq(rule, TS_POLICY_RAW_DTYPE);
}

Test(policy, the_analysers_choice_is_kept_unless_it_found_nothing_lossy)
{
	ts_policy_opts o;
	ts_policy_rule rule;
	ts_codec_config c, a = ts_codec_config_default(TS_CODEC_INT8);

	ts_policy_opts_init(&o);
	o.analysed = &a;
	cr_assert_eq(choose(&c, &rule, "up.weight", TS_BF16, 64, 64, &o), 0);
	cr_expect(rule == TS_POLICY_ANALYSED && c.codec == TS_CODEC_INT8);
	a = ts_codec_config_default(TS_CODEC_RAW);
	a.raw_dtype = TS_BF16;
	cr_assert_eq(choose(&c, &rule, "up.weight", TS_BF16, 64, 64, &o), 0);
	cr_expect(rule == TS_POLICY_EXACT_ANALYSED && c.codec == TS_CODEC_LOSSLESS);
}

Test(policy, next_rewrites_what_did_not_pay_or_missed_the_bound)
{
	ts_policy_opts o;
	ts_tensor_info w;
	ts_codec_config c;

	ts_policy_opts_init(&o);
	memset(&w, 0, sizeof w);
	w.source_dtype = TS_BF16;
	w.codec = ts_codec_config_default(TS_CODEC_LOSSLESS);
	w.source_bytes = 1000;
	w.stored_bytes = 1000;
	cr_expect_eq(ts_policy_next(&c, TS_POLICY_EXACT_TINY, &w, &o), TS_POLICY_WRITE_AGAIN);
	cr_expect(c.codec == TS_CODEC_RAW && c.raw_dtype == TS_BF16 && c.bits_per_value == 16);
	cr_expect_eq(ts_policy_next(&c, TS_POLICY_CODEC, &w, &o), TS_POLICY_DONE,
		     "lossless asked for is kept");
	w.stored_bytes = 999;
	cr_expect_eq(ts_policy_next(&c, TS_POLICY_EXACT_NAME, &w, &o), TS_POLICY_DONE);
	w.codec = ts_codec_config_default(TS_CODEC_NVFP4);
	w.stored_bytes = 300;
	w.error.rel_rms_pct = 10.5;
	cr_expect_eq(ts_policy_next(&c, TS_POLICY_ANALYSED, &w, &o), TS_POLICY_ANALYSE_WHOLE);
	cr_expect(c.codec == TS_CODEC_NVFP4 && c.max_error_pct == 10.0);
	cr_expect_eq(ts_policy_next(&c, TS_POLICY_CODEC, &w, &o), TS_POLICY_DONE);
	w.error.rel_rms_pct = 10.0;
	cr_expect_eq(ts_policy_next(&c, TS_POLICY_ANALYSED, &w, &o), TS_POLICY_DONE);
}

Test(policy, sample_rows_take_at_most_a_million_elements)
{
	cr_expect_eq(ts_policy_sample_rows(1024, 1024), 1024);  /* exactly 2^20: all */
	cr_expect_eq(ts_policy_sample_rows(1025, 1024), 1024);
	cr_expect_eq(ts_policy_sample_rows(100000, 4096), 256);
	cr_expect_eq(ts_policy_sample_rows(3, 1u << 21), 1);   /* rows wider than the sample */
	cr_expect_eq(ts_policy_sample_rows(1, 1u << 22), 1);
	cr_expect_eq(ts_policy_sample_rows(0, 0), 0);
}

Test(policy, choose_refuses_bad_arguments)
{
	ts_policy_opts o;
	ts_policy_rule rule;
	ts_codec_config c;
	uint64_t shape[1] = {8};

	ts_policy_opts_init(&o);
	cr_expect_eq(ts_policy_choose(NULL, &rule, "w", TS_F32, 1, shape, &o), TS_EINVAL);
	cr_expect_eq(ts_policy_choose(&c, NULL, "w", TS_F32, 1, shape, &o), TS_EINVAL);
	cr_expect_eq(ts_policy_choose(&c, &rule, NULL, TS_F32, 1, shape, &o), TS_EINVAL);
	cr_expect_eq(ts_policy_choose(&c, &rule, "w", TS_F32, 1, NULL, &o), TS_EINVAL);
	cr_expect_eq(ts_policy_choose(&c, &rule, "w", (ts_dtype)999, 1, shape, &o), TS_EINVAL);
	cr_expect_eq(ts_policy_choose(&c, &rule, "w", TS_F32, TS_MAX_DIMS + 1, shape, &o),
		     TS_EINVAL);
	o.codec = 99;
	cr_expect_eq(ts_policy_choose(&c, &rule, "w", TS_F32, 1, shape, &o), TS_EINVAL);
	o.codec = -1;
	o.max_error_pct = 101;
	cr_expect_eq(ts_policy_choose(&c, &rule, "w", TS_F32, 1, shape, &o), TS_EINVAL);
	cr_expect_eq(ts_policy_choose(&c, &rule, "w", TS_F32, 1, shape, NULL), 0, "defaults");
	cr_expect_eq(rule, TS_POLICY_EXACT_1D);
	cr_expect_eq(ts_policy_next(NULL, TS_POLICY_ANALYSED, NULL, NULL), TS_EINVAL);
}
