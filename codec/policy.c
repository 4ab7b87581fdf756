/*
 * The import policy (include/tstore.h, "The import policy"): the codec `tstore import` and
 * Python's save_file() give each tensor, the tensors they never quantize under codec "auto",
 * and how a tensor kept exact is stored. One decision tree for both, so that they store the
 * same tensors the same way.
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
 * Invariants
 *   1. A name matching several rules is reported under the first (order of the table).
 *   2. ts_policy_choose() tries its rules in the order of ts_policy_rule; the first that
 *      applies decides, and every rule whose name says "exact" gives ts_policy_exact_config().
 */
#include "config.h"

#include <fnmatch.h>
#include <stddef.h>
#include <string.h>

#include "common/error.h"

static const struct rule {
	const char *glob;
	const char *reason;
	unsigned write_flags; /* ts_policy_write_flags(): a token embedding is gathered by rows */
} rules[] = {
	{"*embed_tokens*", "token embedding", TS_WRITE_ROWS},
	{"*wte*", "token embedding", TS_WRITE_ROWS},
	{"*word_embeddings*", "token embedding", TS_WRITE_ROWS},
	{"lm_head*", "output projection", 0},
	{"embed_out*", "output projection", 0},
	{"output.weight", "output projection", 0},
	{"*.mlp.gate.weight", "MoE router", 0},
	{"*router*", "MoE router", 0},
};

/* The first rule that @p name matches (invariant 1), or NULL. */
static const struct rule *rule_of(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		if (fnmatch(rules[i].glob, name, 0) == 0)
			return &rules[i];
	return NULL;
}

TS_API const char *ts_policy_keep_reason(const char *name)
{
	const struct rule *r = rule_of(name);

	return r ? r->reason : NULL;
}

TS_API unsigned ts_policy_write_flags(const char *name)
{
	const struct rule *r = rule_of(name);

	return r ? r->write_flags : 0;
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

static int is_float(ts_dtype d)
{
	return d == TS_F32 || d == TS_BF16 || d == TS_F16;
}

static ts_codec_config raw_config(ts_dtype dtype)
{
	ts_codec_config c = ts_codec_config_default(TS_CODEC_RAW);

	c.raw_dtype = dtype;
	c.bits_per_value = (int)(8 * ts_dtype_size(dtype));
	return c;
}

static int is_exact_rule(ts_policy_rule rule)
{
	return rule == TS_POLICY_KEPT || rule == TS_POLICY_EXACT_BOUND ||
	       rule == TS_POLICY_EXACT_NAME || rule == TS_POLICY_EXACT_1D ||
	       rule == TS_POLICY_EXACT_TINY || rule == TS_POLICY_EXACT_NONFINITE ||
	       rule == TS_POLICY_EXACT_ANALYSED;
}

TS_API void ts_policy_opts_init(ts_policy_opts *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->codec = -1;
	opts->max_error_pct = 10.0;
}

/*
 * The decision tree, first rule that applies: a dtype the codecs do not take is stored raw; a
 * tensor the caller keeps is exact; a codec asked for is used; under "auto", the exact-keeping
 * rules in the order of ts_policy_rule; then the analyser's choice (exact if it found no lossy
 * codec within the bound).
 */
TS_API int ts_policy_choose(ts_codec_config *out, ts_policy_rule *rule, const char *name,
			    ts_dtype dtype, int ndim, const uint64_t *shape,
			    const ts_policy_opts *opts)
{
	ts_policy_opts def;
	uint64_t nelem = 1;
	ts_policy_rule r;

	if (!out || !rule || !name || (ndim > 0 && !shape))
		return ts__err(TS_EINVAL, "ts_policy_choose: NULL argument");
	if (!opts) {
		ts_policy_opts_init(&def);
		opts = &def;
	}
	if (!ts_dtype_size(dtype))
		return ts__err(TS_EINVAL, "ts_policy_choose: tensor '%s': unknown dtype %d", name,
			       (int)dtype);
	if (ndim < 0 || ndim > TS_MAX_DIMS)
		return ts__err(TS_EINVAL, "ts_policy_choose: tensor '%s': %d dimensions (0..%d)",
			       name, ndim, TS_MAX_DIMS);
	if (opts->codec < -1 || opts->codec >= TS_CODEC_COUNT)
		return ts__err(TS_EINVAL, "ts_policy_choose: codec %d is neither -1 (auto) nor a "
			       "ts_codec", opts->codec);
	if (!(opts->max_error_pct >= 0 && opts->max_error_pct <= 100))
		return ts__err(TS_EINVAL, "ts_policy_choose: max_error_pct %g outside [0, 100]",
			       opts->max_error_pct);
	for (int i = 0; i < ndim; i++)
		nelem = shape[i] && nelem > UINT64_MAX / shape[i] ? UINT64_MAX : nelem * shape[i];

	if (!is_float(dtype)) {
		*out = raw_config(dtype);
		r = TS_POLICY_RAW_DTYPE;
	} else if (opts->flags & TS_POLICY_KEEP) {
		r = TS_POLICY_KEPT;
	} else if (opts->codec >= 0) {
		if (opts->codec == TS_CODEC_RAW) {
			*out = raw_config(dtype);
		} else if (opts->codec == TS_CODEC_LOSSLESS) {
			ts_policy_exact_config(out, dtype);
		} else if (opts->nonfinite) {
			return ts__err(TS_ENONFINITE, "tensor '%s' holds %llu NaN or Inf values: codec "
				       "%s cannot encode it", name,
				       (unsigned long long)opts->nonfinite,
				       ts_codec_name((ts_codec)opts->codec));
		} else {
			*out = ts_codec_config_default((ts_codec)opts->codec);
		}
		r = TS_POLICY_CODEC;
	} else if (opts->max_error_pct == 0) {
		r = TS_POLICY_EXACT_BOUND;
	} else if (!(opts->flags & TS_POLICY_QUANTIZE_ALL) && ts_policy_keep_reason(name)) {
		r = TS_POLICY_EXACT_NAME;
	} else if (ndim <= 1) {
		r = TS_POLICY_EXACT_1D;
	} else if (nelem < TS_POLICY_TINY_ELEMENTS) {
		r = TS_POLICY_EXACT_TINY;
	} else if (opts->nonfinite) {
		r = TS_POLICY_EXACT_NONFINITE;
	} else if (!opts->analysed) {
		*out = ts_codec_config_default(TS_CODEC_NVFP4);
		out->max_error_pct = opts->max_error_pct;
		r = TS_POLICY_ANALYSE;
	} else if (opts->analysed->codec == TS_CODEC_RAW && opts->analysed->raw_dtype == dtype) {
		r = TS_POLICY_EXACT_ANALYSED; /* no lossy codec within the bound */
	} else {
		*out = *opts->analysed;
		r = TS_POLICY_ANALYSED;
	}
	if (is_exact_rule(r))
		ts_policy_exact_config(out, dtype);
	*rule = r;
	return 0;
}

TS_API int ts_policy_next(ts_codec_config *out, ts_policy_rule rule,
			  const ts_tensor_info *written, const ts_policy_opts *opts)
{
	double bound = opts ? opts->max_error_pct : 10.0;

	if (!out || !written)
		return ts__err(TS_EINVAL, "ts_policy_next: NULL argument");
	if (is_exact_rule(rule) && written->stored_bytes >= written->source_bytes) {
		*out = raw_config(written->source_dtype); /* lossless did not pay */
		return TS_POLICY_WRITE_AGAIN;
	}
	if (rule == TS_POLICY_ANALYSED && written->codec.codec != TS_CODEC_RAW &&
	    written->error.rel_rms_pct > bound) {
		/* the sample misled the analyser: its input, for the whole tensor */
		*out = ts_codec_config_default(TS_CODEC_NVFP4);
		out->max_error_pct = bound;
		return TS_POLICY_ANALYSE_WHOLE;
	}
	return TS_POLICY_DONE;
}

TS_API uint64_t ts_policy_sample_rows(uint64_t rows, uint64_t cols)
{
	uint64_t n;

	if (rows <= 1 || !cols || rows <= TS_POLICY_SAMPLE_ELEMENTS / cols)
		return rows; /* at most TS_POLICY_SAMPLE_ELEMENTS elements: all of them */
	n = TS_POLICY_SAMPLE_ELEMENTS / cols;
	return n < 1 ? 1 : n;
}
