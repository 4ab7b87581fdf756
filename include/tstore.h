/*
 * tstore — a storage engine for large tensors.
 *
 * This header is the whole public API and its specification. Everything not declared here is
 * private to the library.
 *
 * Conventions
 *   - A function that can fail returns int: 0 on success or a negative TS_E* code. The one-line
 *     detail of the last failure on the calling thread is in ts_error_last().
 *   - Out-parameters come first. Handles are opaque; every create/open has a free/close that
 *     accepts NULL.
 *   - Sizes are in bytes unless named otherwise; element counts are uint64_t.
 */
#ifndef TSTORE_H
#define TSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TS_BUILDING_LIBRARY) && defined(__GNUC__)
#define TS_API __attribute__((visibility("default")))
#else
#define TS_API
#endif

#define TS_VERSION_MAJOR 0
#define TS_VERSION_MINOR 2
#define TS_VERSION_PATCH 0
#define TS_VERSION_STRING "0.2.0"

/** The library's version string, e.g. "0.2.0". Static storage. */
TS_API const char *ts_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * X(name, value, message). Codes are ABI: append only, never renumber.
 */
#define TS_ERROR_LIST(X)                                                                       \
	X(TS_OK, 0, "success")                                                                 \
	X(TS_EINVAL, -1, "invalid argument")                                                   \
	X(TS_ENOMEM, -2, "out of memory")                                                      \
	X(TS_ENOTFOUND, -3, "not found")                                                       \
	X(TS_ERANGE, -4, "out of range")                                                       \
	X(TS_ECORRUPT, -5, "data is corrupt")                                                  \
	X(TS_EIO, -6, "input/output error")                                                    \
	X(TS_ENOSPC, -7, "no space left on device")                                            \
	X(TS_EEXIST, -8, "already exists")                                                     \
	X(TS_EBUSY, -9, "resource busy")                                                       \
	X(TS_ENOTSUP, -10, "not supported")                                                    \
	X(TS_ENONFINITE, -11, "non-finite value cannot be encoded by a lossy codec")           \
	X(TS_ESHORTBUF, -12, "buffer too small")                                               \
	X(TS_EVERSION, -13, "unsupported format version")                                      \
	X(TS_ECANCELED, -14, "operation canceled")                                             \
	X(TS_EREADONLY, -15, "store is opened read-only")                                      \
	X(TS_EDTYPE, -16, "unsupported data type for this operation")                          \
	X(TS_EBOUND, -17, "no codec meets the error bound")                                    \
	X(TS_EINTERNAL, -18, "internal error")

typedef enum ts_error {
#define TS_X_ENUM(name, value, msg) name = value,
	TS_ERROR_LIST(TS_X_ENUM)
#undef TS_X_ENUM
} ts_error;

/** A short English description of @p code ("data is corrupt"). Static storage; never NULL. */
TS_API const char *ts_strerror(int code);

/** The symbolic name of @p code ("TS_ECORRUPT"). Static storage; never NULL. */
TS_API const char *ts_errname(int code);

/**
 * The one-line detail of the last error raised on the calling thread, saying what and where
 * ("page 17 of tensor 'w': checksum mismatch"). Empty string if none.
 * Lifetime: valid until the next tstore call on the same thread.
 */
TS_API const char *ts_error_last(void);

/** Forget the calling thread's last error. */
TS_API void ts_error_clear(void);

/* ------------------------------------------------------------------------------------------ */
/* Data types                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/** Element types. Values are part of the on-disk format: append only. */
typedef enum ts_dtype {
	TS_F32 = 0,
	TS_BF16 = 1,
	TS_F16 = 2,
	TS_F64 = 3,
	TS_F8_E4M3 = 4,
	TS_F8_E5M2 = 5,
	TS_I8 = 6,
	TS_U8 = 7,
	TS_I16 = 8,
	TS_U16 = 9,
	TS_I32 = 10,
	TS_U32 = 11,
	TS_I64 = 12,
	TS_U64 = 13,
	TS_BOOL = 14,
	TS_DTYPE_COUNT
} ts_dtype;

/** Bytes per element of @p dtype; 0 for an unknown dtype. */
TS_API size_t ts_dtype_size(ts_dtype dtype);

/** The safetensors spelling of @p dtype ("F32", "BF16", "F8_E4M3", ...); "?" if unknown. */
TS_API const char *ts_dtype_name(ts_dtype dtype);

/** Parse a dtype name, case-insensitively ("f32", "BF16", "F8_E4M3"). 0 or TS_EINVAL. */
TS_API int ts_dtype_parse(ts_dtype *out, const char *name);

/** 1 if @p dtype is a floating-point type (F32, BF16, F16, F64, F8_*). */
TS_API int ts_dtype_is_float(ts_dtype dtype);

/* ------------------------------------------------------------------------------------------ */
/* Element formats: scalar conversions, exact where the format allows                          */
/* ------------------------------------------------------------------------------------------ */

/** float -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet), Inf stays Inf. */
TS_API uint16_t ts_f32_to_bf16(float x);
TS_API float ts_bf16_to_f32(uint16_t h);
/** float -> IEEE binary16 bits, round to nearest even; overflow gives Inf; NaN stays NaN. */
TS_API uint16_t ts_f32_to_f16(float x);
TS_API float ts_f16_to_f32(uint16_t h);
/** float -> E4M3 (bias 7, max 448, 0x7F/0xFF NaN, no Inf), saturating, round to nearest even.
 *  NaN input gives 0x7F (with the sign bit of the input). */
TS_API uint8_t ts_f32_to_e4m3(float x);
TS_API float ts_e4m3_to_f32(uint8_t b);
/** float -> E2M1 code (bit 3 sign; magnitudes 0,0.5,1,1.5,2,3,4,6), saturating, nearest even.
 *  Negative values that round to zero give 0x8. Undefined for NaN. */
TS_API uint8_t ts_f32_to_e2m1(float x);
TS_API float ts_e2m1_to_f32(uint8_t code);
/** E8M0: byte b is 2^(b-127); 0xFF is NaN. */
TS_API float ts_e8m0_to_f32(uint8_t b);

/* ------------------------------------------------------------------------------------------ */
/* Codecs                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** Codec identifiers. Values are part of the on-disk format: append only. */
typedef enum ts_codec {
	TS_CODEC_RAW = 0,   /**< values stored as they are (lossless) */
	TS_CODEC_NVFP4 = 1, /**< 16-value blocks: E2M1 codes, E4M3 block scale, FP32 tensor scale */
	TS_CODEC_MXFP4 = 2, /**< OCP MX v1.0: 32-value blocks, E2M1 codes, E8M0 block scale */
	TS_CODEC_INT8 = 3,  /**< INT8 codes, FP32 scale (and zero point if asymmetric) per block */
	TS_CODEC_FP8 = 4,   /**< E4M3 codes, one FP32 per-tensor scale */
	TS_CODEC_LOSSLESS = 5, /**< every bit kept: exponent plane entropy-coded (zstd), sign and
				    mantissa as they are; variable length, at most raw + 1 byte */
	TS_CODEC_COUNT
} ts_codec;

/** NVFP4 encoder recipes; both produce the same format. */
typedef enum ts_recipe {
	TS_RECIPE_NVIDIA = 0, /**< TransformerEngine's recipe, bit for bit */
	TS_RECIPE_BEST = 1    /**< searched block scales: lower error at the same size */
} ts_recipe;

/**
 * How a tensor is encoded.
 * Layout rule for every block codec: blocks run along the last dimension and never straddle a
 * row; a row whose length is not a multiple of block_size ends in a zero-padded block.
 */
typedef struct ts_codec_config {
	ts_codec codec;
	int block_size;       /**< nvfp4 16, mxfp4 32, int8 16..4096 (power of two), fp8/raw/lossless 1 */
	int bits_per_value;   /**< 4 for nvfp4/mxfp4, 8 for int8/fp8, raw/lossless: bits of raw_dtype */
	int symmetric;        /**< int8: 1 symmetric (no zero point), 0 asymmetric */
	ts_recipe recipe;     /**< nvfp4 only */
	ts_dtype raw_dtype;   /**< raw and lossless: the stored element type */
	double max_error_pct; /**< the analyzer's bound on relative RMS error, percent */
} ts_codec_config;

/** The default configuration of @p codec (ts_codec_config_default(TS_CODEC_NVFP4): block 16,
 *  4 bits, symmetric, recipe nvidia, max_error_pct 10). */
TS_API ts_codec_config ts_codec_config_default(ts_codec codec);

/** Validate @p cfg. 0 or TS_EINVAL with the reason in ts_error_last(). */
TS_API int ts_codec_config_check(const ts_codec_config *cfg);

/** "raw", "nvfp4", "mxfp4", "int8", "fp8", "lossless"; "?" if unknown. */
TS_API const char *ts_codec_name(ts_codec codec);
/** Parse a codec name. 0 or TS_EINVAL. */
TS_API int ts_codec_parse(ts_codec *out, const char *name);

/**
 * The per-tensor decode scale for a tensor whose largest magnitude is @p amax:
 * nvfp4 amax/2688 (recipe nvidia) or amax/1152 (recipe best), fp8 amax/448; 1 when amax is 0
 * and for the other codecs. Decoders take it as given (docs/CODECS.md).
 */
TS_API float ts_codec_tensor_scale(const ts_codec_config *cfg, float amax);

/**
 * Bytes that ts_codec_encode() writes for a rows x cols matrix. For block codecs the encoded
 * form is a code plane followed by a scale plane (see docs/FORMAT.md, "Codec payloads").
 * lossless writes a variable length: this is its most (1 + the raw bytes), and
 * ts_codec_encode_len() tells what one encoding took. Returns 0 if @p cfg is invalid.
 */
TS_API size_t ts_codec_encoded_size(const ts_codec_config *cfg, uint64_t rows, uint64_t cols);

/**
 * Encode a rows x cols matrix. Row r starts at element r * src_stride of @p src, whose elements
 * are of type @p src_dtype (F32, BF16 or F16 for lossy codecs; any dtype equal to raw_dtype for
 * raw). @p amax is the largest finite magnitude of the whole tensor (nvfp4 and fp8 derive their
 * tensor scale from it; ignored otherwise). No allocation, no I/O; any thread.
 *
 * @return 0; TS_ESHORTBUF if dst_size < ts_codec_encoded_size(); TS_ENONFINITE if a lossy codec
 *         meets NaN or Inf (ts_error_last() gives the row and column); TS_EINVAL, TS_EDTYPE.
 */
TS_API int ts_codec_encode(const ts_codec_config *cfg, float amax, const void *src,
			   ts_dtype src_dtype, uint64_t src_stride, uint64_t rows, uint64_t cols,
			   void *dst, size_t dst_size);

/**
 * ts_codec_encode() that also stores in @p *written the bytes it wrote: ts_codec_encoded_size()
 * for every codec but lossless, whose length depends on the data (never more than that size).
 * lossless keeps a zstd context and scratch per thread (made at the thread's first lossless
 * call, freed when the thread exits): the one allocation the codec API makes.
 *
 * @return as ts_codec_encode(); TS_ENOMEM if lossless cannot make its per-thread context.
 */
TS_API int ts_codec_encode_len(size_t *written, const ts_codec_config *cfg, float amax,
			       const void *src, ts_dtype src_dtype, uint64_t src_stride,
			       uint64_t rows, uint64_t cols, void *dst, size_t dst_size);

/**
 * Decode a rows x cols matrix encoded by ts_codec_encode() into @p dst as @p dtype (F32, BF16 or
 * F16; raw also decodes to its own raw_dtype). Row r is written at element r * dst_stride.
 * @p tensor_scale is ts_codec_tensor_scale() of the tensor. No allocation, no I/O; any thread.
 *
 * lossless: @p src_size is the length ts_codec_encode_len() reported (the page's payload);
 * a payload that is not a valid lossless encoding of rows x cols elements is TS_ECORRUPT.
 *
 * @return 0; TS_ESHORTBUF if src_size < ts_codec_encoded_size() (lossless: shorter than its
 *         own header says); TS_EDTYPE; TS_EINVAL; TS_ECORRUPT (lossless).
 */
TS_API int ts_codec_decode(const ts_codec_config *cfg, float tensor_scale, const void *src,
			   size_t src_size, uint64_t rows, uint64_t cols, ts_dtype dtype, void *dst,
			   uint64_t dst_stride);

/** The name of the kernel set in effect ("avx2" or "scalar"); TSTORE_KERNEL=scalar forces the
 *  portable reference. Resolved once per process. */
TS_API const char *ts_kernel_name(void);

/* ------------------------------------------------------------------------------------------ */
/* Statistics                                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct ts_compression_stats {
	uint64_t original_bytes;
	uint64_t compressed_bytes;
	double compression_ratio; /**< original / compressed (0 if compressed is 0) */
	double mean_error;        /**< mean |x - x^| */
	double max_error;         /**< max |x - x^| */
	uint64_t blocks_processed;
	double rel_rms_pct;       /**< 100 * ||x - x^|| / ||x||: 0 when exact, +Inf when ||x|| is 0
				       but the error is not */
	double sqnr_db;           /**< 10 log10(||x||^2 / ||x - x^||^2); +Inf when exact */
} ts_compression_stats;

typedef struct ts_distribution_stats {
	double mean;
	double std;           /**< population standard deviation (divides by the finite count) */
	double min_val;
	double max_val;
	double dynamic_range; /**< log2(max |x| / min nonzero |x|) in bits; 0 if no nonzero */
	double sparsity;      /**< fraction of exact zeros (+0 or -0) among the finite values */
	uint64_t count;       /**< elements seen, finite or not */
	uint64_t nonfinite;   /**< NaN and Inf seen (excluded from the other figures) */
} ts_distribution_stats;

/**
 * Streaming accumulator: init, add chunks of any sizes, finish. No allocation; the caller owns
 * it (plain data: copy it freely). One accumulator takes distribution and error chunks in the
 * same pass. The figures depend on the chunking only through rounding (the sums are formed per
 * sub-block and merged with Chan's update / compensated summation). With no finite element every
 * distribution figure but count and nonfinite is 0.
 * Threads: one accumulator per thread; no shared state.
 */
typedef struct ts_stats_acc {
	double s[16];
	uint64_t n[4];
} ts_stats_acc;

TS_API void ts_stats_acc_init(ts_stats_acc *acc);
/** Accumulate distribution statistics over @p count elements of @p src (@p dtype F32/BF16/F16).
 *  @return 0; TS_EDTYPE for another dtype; TS_EINVAL for NULL pointers. */
TS_API int ts_stats_acc_add_dist(ts_stats_acc *acc, const void *src, ts_dtype dtype,
				 uint64_t count);
/** Finish distribution statistics into @p out. */
TS_API void ts_stats_acc_finish_dist(ts_distribution_stats *out, const ts_stats_acc *acc);
/** Accumulate the error of @p approx (F32) against @p orig (@p dtype F32/BF16/F16) over @p count
 *  elements. A non-finite original counts as exact when @p approx holds the same non-finite
 *  value (any NaN for NaN) and as an infinite error otherwise; a non-finite approximation of a
 *  finite original is an infinite error.
 *  @return 0; TS_EDTYPE; TS_EINVAL for NULL pointers. */
TS_API int ts_stats_acc_add_error(ts_stats_acc *acc, const void *orig, ts_dtype dtype,
				  const float *approx, uint64_t count);
/** Fold @p from into @p into, as if every chunk added to @p from had been added to @p into
 *  (up to rounding): per-thread accumulators merged at the end. */
TS_API void ts_stats_acc_merge(ts_stats_acc *into, const ts_stats_acc *from);
/** Finish error statistics into @p out; the caller supplies the byte counts and blocks
 *  processed. */
TS_API void ts_stats_acc_finish_error(ts_compression_stats *out, const ts_stats_acc *acc,
				      uint64_t original_bytes, uint64_t compressed_bytes,
				      uint64_t blocks);

/* ------------------------------------------------------------------------------------------ */
/* The analyzer                                                                                */
/* ------------------------------------------------------------------------------------------ */

/**
 * Choose the configuration with the fewest encoded bytes whose relative RMS error on THIS tensor
 * (rows x cols of @p src_dtype, rows contiguous) is at most cfg_in->max_error_pct, measured by
 * encoding and decoding each candidate; falls back to raw (lossless) in the source dtype when
 * no lossy candidate qualifies or the tensor holds non-finite values.
 * Candidates (F32/BF16/F16 sources): nvfp4 with cfg_in->recipe, then with the other recipe
 * (same size: the other wins only if the preferred one misses the bound), mxfp4, int8 symmetric
 * and asymmetric at block sizes 16..4096, fp8, and for an F32 source raw BF16 and raw F16 (their rounding error
 * counts like any other). A bound of 0 admits only raw narrowings that are exact on this tensor.
 * Other source dtypes are always raw. Tensors over 512K elements are measured first on a
 * deterministic sample of whole rows; the winner is always verified on the whole tensor.
 * Allocates bounded scratch internally (a few hundred KiB; the analyzer is not a kernel).
 * Any thread.
 *
 * @param out        the chosen configuration (max_error_pct copied from the input)
 * @param stats      if not NULL, the chosen candidate's measured statistics
 * @return 0; TS_EINVAL; TS_ENOMEM.
 */
TS_API int ts_analyze(ts_codec_config *out, ts_compression_stats *stats,
		      const ts_codec_config *cfg_in, const void *src, ts_dtype src_dtype,
		      uint64_t rows, uint64_t cols);

/* ------------------------------------------------------------------------------------------ */
/* The import policy                                                                           */
/* ------------------------------------------------------------------------------------------ */

/*
 * The policy of `tstore import` and of the Python package's save_file(): which codec each
 * tensor is written with (docs/CLI.md, "Policy"). These calls are the one place both take it
 * from, so that they store the same tensors the same way. The default ("auto") keeps some
 * floating-point tensors exact instead of quantizing them (ts_policy_keep_reason, and the
 * rules of ts_policy_rule). A caller writes a tensor as ts_policy_choose() says (running
 * ts_analyze() and then ts_policy_choose() again where it says TS_POLICY_ANALYSE), then asks
 * ts_policy_next() whether to write it again.
 */

/**
 * Why the default policy keeps tensor @p name exact: "token embedding", "output projection" or
 * "MoE router"; NULL if no rule names it (or @p name is NULL). The rules are glob patterns on
 * the whole name (fnmatch(3) without flags: '*' crosses dots), the first matching one naming the
 * reason: *embed_tokens*, *wte*, *word_embeddings* (token embedding); lm_head*, embed_out*,
 * output.weight (output projection); *.mlp.gate.weight, *router* (MoE router).
 * The string returned is static. Any thread.
 */
TS_API const char *ts_policy_keep_reason(const char *name);

/**
 * The write flags the policy gives tensor @p name whatever its codec: TS_WRITE_ROWS for a token
 * embedding (the names ts_policy_keep_reason() calls "token embedding"), whose rows are gathered
 * one token at a time and sharded by rows (vocab parallelism); 0 otherwise (or for NULL).
 * `tstore import` and save_file() add them to each tensor's ts_write_opts.flags. Any thread.
 */
TS_API unsigned ts_policy_write_flags(const char *name);

/**
 * The configuration a floating-point tensor of @p dtype kept exact is written with: the lossless
 * codec in @p dtype (`tstore import` rewrites the tensor raw where that is not smaller).
 * Any thread.
 *
 * @return 0; TS_EINVAL if @p out is NULL or @p dtype is not F32, BF16 or F16.
 */
TS_API int ts_policy_exact_config(ts_codec_config *out, ts_dtype dtype);

/** Fewer elements than this: kept exact under codec "auto". */
#define TS_POLICY_TINY_ELEMENTS 4096u
/** The most elements of a tensor that "auto" analyses (ts_policy_sample_rows). */
#define TS_POLICY_SAMPLE_ELEMENTS (1u << 20)

/** ts_policy_opts.flags: no exact-keeping by name (ts_policy_keep_reason), `--quantize-all`. */
#define TS_POLICY_QUANTIZE_ALL 1u
/** ts_policy_opts.flags: keep this tensor exact whatever the codec (`--keep GLOB` matched). */
#define TS_POLICY_KEEP 2u

/** What a tensor is written under: the options of `tstore import` or save_file(), and what the
 *  caller knows of the tensor. Fill it with ts_policy_opts_init() first. */
typedef struct ts_policy_opts {
	int codec;            /**< the ts_codec for every floating-point tensor; -1: "auto" */
	double max_error_pct; /**< auto: the bound on relative RMS error, percent; 0: all exact */
	unsigned flags;       /**< TS_POLICY_QUANTIZE_ALL, TS_POLICY_KEEP */
	uint64_t nonfinite;   /**< the NaN and Inf values the tensor holds (the caller's scan) */
	const ts_codec_config *analysed; /**< after TS_POLICY_ANALYSE: ts_analyze()'s choice */
} ts_policy_opts;

/** Fill @p opts with the defaults: codec -1 (auto), max_error_pct 10, no flags, nonfinite 0,
 *  analysed NULL. */
TS_API void ts_policy_opts_init(ts_policy_opts *opts);

/** Which rule of the policy decided a tensor's codec, in the order they are tried. */
typedef enum ts_policy_rule {
	TS_POLICY_RAW_DTYPE = 0,       /**< not F32, BF16 or F16: raw in its own dtype */
	TS_POLICY_KEPT = 1,            /**< exact: TS_POLICY_KEEP */
	TS_POLICY_CODEC = 2,           /**< the codec asked for (raw, lossless: in the tensor's dtype) */
	TS_POLICY_EXACT_BOUND = 3,     /**< exact: max_error_pct is 0 */
	TS_POLICY_EXACT_NAME = 4,      /**< exact: ts_policy_keep_reason() names it */
	TS_POLICY_EXACT_1D = 5,        /**< exact: one dimension or none */
	TS_POLICY_EXACT_TINY = 6,      /**< exact: fewer than TS_POLICY_TINY_ELEMENTS elements */
	TS_POLICY_EXACT_NONFINITE = 7, /**< exact: it holds NaN or Inf */
	TS_POLICY_ANALYSE = 8,         /**< run ts_analyze(), then call again with its choice */
	TS_POLICY_ANALYSED = 9,        /**< the analyser's choice */
	TS_POLICY_EXACT_ANALYSED = 10  /**< exact: the analyser found no lossy codec in the bound */
} ts_policy_rule;

/**
 * The configuration the policy writes tensor @p name (@p dtype, @p ndim dimensions @p shape)
 * with under @p opts (NULL: the defaults), and the rule that decided it. "Exact" rules give
 * ts_policy_exact_config(). TS_POLICY_ANALYSE gives the analyser's input (nvfp4 defaults,
 * max_error_pct of @p opts): call ts_analyze() with it on the sample rows
 * (ts_policy_sample_rows), set opts->analysed to its result and call again.
 * Any thread; nothing is retained.
 *
 * @return 0; TS_ENONFINITE if a lossy codec is asked for and opts->nonfinite is not 0;
 *         TS_EINVAL for a NULL argument, an unknown dtype or codec, @p ndim outside
 *         0..TS_MAX_DIMS or max_error_pct outside [0, 100].
 */
TS_API int ts_policy_choose(ts_codec_config *out, ts_policy_rule *rule, const char *name,
			    ts_dtype dtype, int ndim, const uint64_t *shape,
			    const ts_policy_opts *opts);

/** What to do once a tensor is written as ts_policy_choose() said (ts_policy_next). */
typedef enum ts_policy_step {
	TS_POLICY_DONE = 0,         /**< keep what was written */
	TS_POLICY_WRITE_AGAIN = 1,  /**< write it again with *out: raw, where exact did not pay */
	TS_POLICY_ANALYSE_WHOLE = 2 /**< the sample misled the analyser: ts_analyze() the whole
				         tensor with *out and write it again with that choice */
} ts_policy_step;

struct ts_tensor_info; /* "The store", below */

/**
 * Whether a tensor written by rule @p rule, as @p written describes it (ts_writer_commit()),
 * is to be written again: a tensor kept exact whose stored bytes are not fewer than its
 * source's is rewritten raw; one whose analysed codec misses opts->max_error_pct is analysed
 * whole. Any thread.
 *
 * @return a ts_policy_step (>= 0); TS_EINVAL if @p out or @p written is NULL.
 */
TS_API int ts_policy_next(ts_codec_config *out, ts_policy_rule rule,
			  const struct ts_tensor_info *written, const ts_policy_opts *opts);

/**
 * How many rows of a @p rows x @p cols view "auto" analyses: all of them when they hold at most
 * TS_POLICY_SAMPLE_ELEMENTS elements (or @p rows is 1), else TS_POLICY_SAMPLE_ELEMENTS / cols
 * (at least 1). Sample row i is row i * rows / n of the view (n the count returned).
 */
TS_API uint64_t ts_policy_sample_rows(uint64_t rows, uint64_t cols);

/* ------------------------------------------------------------------------------------------ */
/* Streaming encoder                                                                           */
/* ------------------------------------------------------------------------------------------ */

/**
 * Encodes a rows x cols tensor fed in row-major order in chunks of any size, in bounded memory.
 * The output is the same bytes as a one-shot ts_codec_encode() of the whole tensor (with the same
 * amax), delivered in order as batches of whole rows: concatenating the @p codes of every call,
 * then the @p scales of every call, gives that encoding. The buffers are valid only during the
 * call. A non-zero return from the sink stops the stream: ts_stream_process()/finish() then
 * return it (TS_ECANCELED if it was positive).
 */
typedef int (*ts_stream_sink)(void *ud, const void *codes, size_t codes_size, const void *scales,
			      size_t scales_size, uint64_t first_row, uint64_t row_count);

typedef struct ts_stream ts_stream;

/**
 * Start a stream. Memory is fixed here: one partial block of input, 64K elements of scratch and
 * a batch of max(1, 65536 / cols) encoded rows — never a function of @p rows.
 * @param amax  the tensor's largest finite magnitude, required (finite, >= 0) for nvfp4 and fp8:
 *              scan the source first. Ignored by the other codecs.
 * @param src_dtype F32, BF16 or F16 for lossy codecs; cfg->raw_dtype for raw.
 * @return 0; TS_EINVAL (bad shape, missing amax, bad configuration); TS_EDTYPE; TS_ENOTSUP for
 *         lossless (its payloads have no streaming form); TS_ENOMEM.
 * Threads: a stream is used by one thread at a time.
 */
TS_API int ts_stream_new(ts_stream **out, const ts_codec_config *cfg, float amax,
			 ts_dtype src_dtype, uint64_t rows, uint64_t cols, ts_stream_sink sink,
			 void *ud);
/**
 * Feed @p bytes (a whole number of elements) of the tensor, continuing where the last left.
 * @return 0; TS_EINVAL; TS_ERANGE if more than rows x cols elements would have been fed;
 *         TS_ENONFINITE for NaN/Inf under a lossy codec (ts_error_last() names row and column);
 *         the sink's code. After an error the stream is poisoned: every call returns that code.
 */
TS_API int ts_stream_process(ts_stream *s, const void *data, size_t bytes);
/**
 * Deliver the last rows and fill @p stats (may be NULL): byte counts, blocks, and the error of
 * the encoding measured by decoding every piece as it was encoded.
 * @return 0; TS_EINVAL if fewer than rows x cols elements were fed, or if the data exceeded the
 *         amax given to ts_stream_new() (nvfp4, fp8: the bytes delivered are then not those of a
 *         one-shot encoding with the true amax); the sink's code.
 */
TS_API int ts_stream_finish(ts_compression_stats *stats, ts_stream *s);
/** Distribution statistics of everything fed so far (complete after ts_stream_finish()). */
TS_API void ts_stream_dist(ts_distribution_stats *out, const ts_stream *s);
/** Free the stream. NULL accepted. */
TS_API void ts_stream_free(ts_stream *s);

/* ------------------------------------------------------------------------------------------ */
/* The store                                                                                   */
/* ------------------------------------------------------------------------------------------ */

#define TS_MAX_DIMS 8
#define TS_MAX_NAME 511 /**< longest tensor name in bytes, excluding the NUL (LMDB's key limit) */

typedef struct ts_store ts_store;

typedef enum ts_io_backend {
	TS_IO_DEFAULT = 0, /**< TSTORE_IO from the environment, else uring (pread if unavailable) */
	TS_IO_URING = 1,
	TS_IO_PREAD = 2,
	TS_IO_MMAP = 3
} ts_io_backend;

/** "uring", "pread", "mmap". */
TS_API const char *ts_io_backend_name(ts_io_backend io);

#define TS_OPEN_WRITE 0x1u  /**< open for writing (one writer process at a time) */
#define TS_OPEN_CREATE 0x2u /**< create the store if it does not exist (implies WRITE) */
#define TS_OPEN_NOSYNC 0x4u /**< commits are not flushed to disk (no fsync): for scratch stores
				 only, such as `tstore import`'s spool; a crash or power loss may
				 lose or damage the store. Other processes see commits as usual */

typedef struct ts_open_opts {
	unsigned flags;
	ts_io_backend io;    /**< TS_IO_DEFAULT: see above */
	int64_t cache_bytes; /**< decoded-page cache budget; -1 default (TSTORE_CACHE_BYTES or
				  256 MiB); 0 turns the cache off */
	uint64_t map_size;   /**< initial LMDB map size; 0 default; grown transparently */
	int threads;         /**< worker threads for encode/decode; 0 = number of cores */
	uint64_t map_max;    /**< largest size the map may grow to; 0 = no limit but the address
				  space. A write that needs more fails with TS_ENOSPC. */
	int64_t busy_timeout_ms; /**< opening for writing while another handle or process has the
				      store open for writing: 0 (default) fails at once with
				      TS_EBUSY; > 0 waits up to that many milliseconds for it to
				      close, then TS_EBUSY; < 0 waits for ever. The waiter
				      sleeps until the store's file is closed (inotify) or a nap of
				      1 ms doubling to 50 ms ends, so it costs next to no CPU and
				      proceeds within about a millisecond after the holder closes
				      or dies (~50 ms where inotify is missing); a killed holder's interrupted writes are
				      then recovered as at any open for writing. */
} ts_open_opts;

/** Fill @p opts with the defaults: read-only, TS_IO_DEFAULT, cache_bytes -1 (default budget),
 *  map_size 0, threads 0 (one per core), map_max 0 (no limit), busy_timeout_ms 0 (fail at
 *  once). */
TS_API void ts_open_opts_init(ts_open_opts *opts);

/**
 * Open the store at @p path: one LMDB file (docs/FORMAT.md), plus LMDB's "<path>-lock" beside it.
 * A read-only open never creates or changes anything in the store file (LMDB still creates the
 * lock file if it is missing). Opening for writing takes an exclusive lock on the file: one
 * writer process per store; read-only handles in any number of processes may be open with it.
 * Opening for writing also removes what interrupted writes left (docs/FORMAT.md, section 7).
 *
 * @param out  receives the handle, to be closed with ts_store_close(); NULL on failure.
 * @param opts NULL: read-only, defaults.
 * @return 0; TS_ENOTFOUND if there is no store at @p path and TS_OPEN_CREATE is not set: no
 *         file, or a blank one (empty, or LMDB's two initial meta pages alone: nothing was ever
 *         committed in it; with TS_OPEN_CREATE a new store replaces it);
 *         TS_ECORRUPT if the file is not a tstore store (not LMDB, another application's LMDB
 *         file, damaged meta records); TS_EVERSION if the store's format is newer than
 *         this library; TS_EBUSY if another handle or process has it open for writing
 *         (after waiting ts_open_opts.busy_timeout_ms for it to close);
 *         TS_EINVAL (bad options, a directory); TS_EREADONLY (no permission); TS_EIO.
 * Threads: the handle may be used by any number of threads at once (reads run in parallel;
 *          writes are serialised).
 */
TS_API int ts_store_open(ts_store **out, const char *path, const ts_open_opts *opts);
/** Close the store and free the handle. NULL is accepted. No call may be in progress on @p st,
 *  and no writer or write group of it may be open (abort or commit it first). */
TS_API void ts_store_close(ts_store *st);

/** The I/O backend in effect (never TS_IO_DEFAULT). */
TS_API ts_io_backend ts_store_io_backend(const ts_store *st);

/**
 * Why the I/O backend in effect differs from the one asked for, or what it runs without
 * ("io_uring unavailable (Operation not permitted): using pread", "no O_DIRECT on this file
 * system"); "" when it is exactly what was asked for. Valid until ts_store_close(). Any thread.
 */
TS_API const char *ts_store_io_detail(const ts_store *st);

typedef struct ts_tensor_info {
	int ndim;
	uint64_t shape[TS_MAX_DIMS];
	ts_dtype source_dtype;
	ts_codec_config codec;
	float amax;
	float tensor_scale;
	uint64_t tile_rows; /**< page geometry: rows and columns (elements) of one page */
	uint64_t tile_cols;
	uint64_t page_count;
	uint64_t stored_bytes; /**< sum of encoded page payloads */
	uint64_t source_bytes; /**< elements x source dtype size */
	ts_compression_stats error;
	ts_distribution_stats dist;
	uint64_t id; /**< internal tensor id (stable while the tensor exists) */
} ts_tensor_info;

/**
 * Describe tensor @p name: shape, codec, geometry, sizes and the statistics measured when it was
 * written. Threads: any. @p out is the caller's; nothing is retained.
 * @return 0; TS_ENOTFOUND if there is no such tensor (names are 1..TS_MAX_NAME bytes);
 *         TS_ECORRUPT if its record is damaged (ts_error_last() names it); TS_EINVAL for NULLs.
 */
TS_API int ts_tensor_info_get(ts_tensor_info *out, ts_store *st, const char *name);

/**
 * Call @p cb for every tensor, in name order (byte-wise). A non-zero return from @p cb stops the
 * walk and is returned. @p name and @p info are valid only during the call. The walk reads names
 * in batches, each in its own short read transaction, so @p cb may take its time and may read,
 * write or delete tensors; tensors added or removed meanwhile may or may not be seen.
 * @return 0; the non-zero value of @p cb; TS_ECORRUPT if a record is damaged (the walk stops
 *         there; ts_store_check() lists every damaged record); TS_ENOMEM.
 */
TS_API int ts_tensor_foreach(ts_store *st,
			     int (*cb)(void *ud, const char *name, const ts_tensor_info *info),
			     void *ud);

/**
 * Read the hyperslab start[i] .. start[i]+count[i]-1 of tensor @p name into @p dst as @p dtype
 * (F32, BF16 or F16; a raw tensor can also be read as its own dtype).
 * Threads: any number of threads may read one store at once.
 *
 * @param dst_size at least product(count) * ts_dtype_size(dtype)
 * @return 0; TS_ENOTFOUND if there is no such tensor; TS_ERANGE if the slice leaves the tensor's
 *         shape or ndim differs; TS_ESHORTBUF; TS_EDTYPE; TS_ECORRUPT if a page fails its checksum
 *         (ts_error_last() names tensor and page); TS_EIO; TS_EBUSY if the tensor was replaced
 *         over and over while the read retried; TS_ENOMEM; TS_EINVAL for NULLs.
 */
TS_API int ts_read_slice(ts_store *st, const char *name, int ndim, const uint64_t *start,
			 const uint64_t *count, ts_dtype dtype, void *dst, size_t dst_size);

/** One read of ts_read_many(): what ts_read_slice() takes. */
typedef struct ts_read_request {
	const char *name;      /**< the tensor */
	int ndim;              /**< entries of start and count (ignored when count is NULL) */
	const uint64_t *start; /**< first index per dimension (ignored when count is NULL) */
	const uint64_t *count; /**< extent per dimension; NULL: the whole tensor */
	ts_dtype dtype;        /**< F32, BF16 or F16; a raw tensor also its own dtype */
	void *dst;             /**< the caller's buffer, at least product(count) elements */
	size_t dst_size;       /**< its size in bytes */
} ts_read_request;

/**
 * Perform the reads @p reqs[0..n) as ts_read_slice() would, one after the other, as one
 * pipeline: while pages of one request decode on the store's worker threads, the storage reads
 * of the next pages (of the next request, at the end of one) are in flight. The way to load
 * many tensors (a model): a loop of ts_read_slice() leaves the disk idle while each tensor's last
 * pages decode and the cores idle while the next tensor's first pages are read.
 * Each request is planned (looked up, checked) before any is read.
 * Threads: as ts_read_slice(); the requests' buffers must not overlap.
 *
 * @return 0 when every request was read. Otherwise the error of the first request (in array
 *         order) that failed, with ts_error_last() naming its tensor; every request before it
 *         was read completely, it and the ones after it may have been partly written:
 *         TS_ENOTFOUND, TS_ERANGE, TS_ESHORTBUF, TS_EDTYPE, TS_ECORRUPT, TS_EIO, TS_EBUSY
 *         (its tensor was replaced over and over while the read retried), TS_ENOMEM as
 *         ts_read_slice(); TS_EINVAL for a NULL store, a NULL @p reqs with n > 0, a request
 *         without a name or (with elements to read) without a buffer.
 */
TS_API int ts_read_many(ts_store *st, const ts_read_request *reqs, size_t n);

/**
 * Gather rows of a tensor: row k of @p dst receives row @p rows[k] of the tensor's 2-D view
 * (rows = product of the leading dimensions, a row = the last dimension; a 1-D tensor has one
 * row) as @p dtype. The rows may come in any order and repeat (embedding lookups, selecting
 * experts). All the pages they touch are read in one I/O batch (a few, past 256 pages or 4 MiB
 * of storage), each page once, and only the requested rows of each page are decoded.
 * Threads: as ts_read_slice().
 *
 * @param dst_size at least n * (last dimension) * ts_dtype_size(dtype)
 * @return 0; TS_ERANGE if a row is outside the tensor (checked before anything is read:
 *         nothing is written); TS_ENOTFOUND; TS_ESHORTBUF; TS_EDTYPE; TS_ECORRUPT if a page
 *         fails its checks (ts_error_last() names tensor and page); TS_EIO; TS_EBUSY if the
 *         tensor was replaced over and over while the read retried; TS_ENOMEM; TS_EINVAL for a
 *         NULL store, name, rows (with n > 0) or buffer.
 */
TS_API int ts_read_rows(ts_store *st, const char *name, size_t n, const uint64_t *rows,
			ts_dtype dtype, void *dst, size_t dst_size);

/**
 * Allocate @p size bytes of destination memory for loads, ready to be written at full speed:
 * a private mapping aligned to 2 MiB, advised for transparent huge pages (MADV_HUGEPAGE), its
 * pages made present before it is returned, in parallel on the worker threads of @p st (NULL:
 * on the calling thread). Fresh memory otherwise faults in 4 KiB at a time while the load writes
 * it, which can cost more than the load itself (docs/READ.md gives measurements). The memory is
 * zeroed. Threads: any.
 *
 * @param out  receives the buffer, to be released with ts_buffer_free(*out, size)
 * @return 0; TS_EINVAL for a NULL @p out or a size of 0; TS_ENOMEM (or the errno code of
 *         mmap) if the memory cannot be mapped.
 */
TS_API int ts_buffer_alloc(void **out, ts_store *st, size_t size);

/** Release a buffer of ts_buffer_alloc(); @p size is the size it was allocated with. NULL is
 *  ignored. */
TS_API void ts_buffer_free(void *buf, size_t size);

/**
 * Read rows [row_start, row_start+row_count) of a block-coded tensor (nvfp4, mxfp4, fp8) in its
 * encoded form: @p codes receives the code plane (row-major, each row padded to whole blocks),
 * @p scales the block-scale plane (nvfp4 E4M3 bytes, mxfp4 E8M0 bytes; none for fp8). The rows are
 * those of the tensor viewed as 2-D [product of leading dims, last dim].
 * ts_read_encoded_size() gives the buffer sizes.
 * @return 0; TS_ENOTSUP for other codecs; TS_ERANGE; TS_ESHORTBUF; TS_ECORRUPT; TS_EIO;
 *         TS_EBUSY, TS_ENOMEM, TS_EINVAL as ts_read_slice().
 */
TS_API int ts_read_encoded(ts_store *st, const char *name, uint64_t row_start, uint64_t row_count,
			   void *codes, size_t codes_size, void *scales, size_t scales_size);

/**
 * The buffer sizes ts_read_encoded() needs for @p row_count rows of the tensor that @p info
 * describes (from ts_tensor_info_get()): @p codes_size receives the code-plane bytes, and
 * @p scales_size the scale-plane bytes (0 for fp8). Pure computation; any thread.
 * @return 0; TS_ENOTSUP if the tensor's codec has no encoded form to read; TS_ERANGE if the
 *         sizes overflow size_t; TS_EINVAL for NULLs.
 */
TS_API int ts_read_encoded_size(size_t *codes_size, size_t *scales_size,
				const ts_tensor_info *info, uint64_t row_count);

/* -- Pages as stored: what the GPU read path moves (docs/GPU.md) ---------------------------- */

/** One page of a tensor and the rectangle of its 2-D view (rows = product of the leading
 *  dimensions, cols = the last one) that it holds (docs/FORMAT.md, section 4). */
typedef struct ts_page_ref {
	uint64_t page;    /**< page index */
	uint64_t r0, nr;  /**< its first row and row count */
	uint64_t c0, nc;  /**< its first column and column count */
	size_t max_bytes; /**< the most ts_read_pages() writes for it (its payload, unpacked) */
} ts_page_ref;

/**
 * Plan the pages covering rows [row_start, row_start+row_count) and columns
 * [col_start, col_start+col_count) of the tensor @p info describes, in ascending page order.
 * Pure computation; any thread. *@p count always receives the number of pages; @p out (room for
 * @p cap) receives them when it has room (out may be NULL with cap 0 to ask the count).
 * @return 0; TS_ESHORTBUF if cap < *count; TS_ERANGE if the rectangle leaves the tensor;
 *         TS_EINVAL for NULLs.
 */
TS_API int ts_page_plan(ts_page_ref *out, size_t cap, size_t *count, const ts_tensor_info *info,
			uint64_t row_start, uint64_t row_count, uint64_t col_start,
			uint64_t col_count);

/**
 * Read, verify (checksum, geometry) and place the payloads of @p n pages of tensor @p name, as
 * planned by ts_page_plan() from @p info, into @p buf: page i at offset offsets[i], where
 * offsets[0] = 0 and offsets[i] = offsets[i-1] + pages[i-1].max_bytes rounded up to 16; its length
 * goes to lengths[i] (either array may be NULL). The payload is the codec's (docs/CODECS.md) as
 * stored, except a lossless payload with planes, whose exponent frame is entropy-decoded here:
 * byte 0 mode 1, bytes 1..4 the element count n (u32), then the sign+mantissa plane and the n
 * exponent bytes (5 + n * size bytes): what is left to do is bit-parallel (docs/GPU.md).
 * The pages are read like ts_read_slice()'s (windows, one I/O batch each, verified on the pool);
 * nothing goes through the cache. Threads: any.
 * @param buf_size at least the last offset plus the last page's max_bytes
 * @return 0; TS_EBUSY if the tensor is no longer the one @p info describes (replaced: plan
 *         again); TS_EINVAL if a page ref disagrees with the tensor's geometry; TS_ESHORTBUF;
 *         TS_ECORRUPT (ts_error_last() names tensor and page); TS_EIO; TS_ENOMEM.
 */
TS_API int ts_read_pages(ts_store *st, const char *name, const ts_tensor_info *info,
			 const ts_page_ref *pages, size_t n, void *buf, size_t buf_size,
			 size_t *offsets, size_t *lengths);

/** Remove tensor @p name and its pages in one transaction. Reads in progress finish with the
 *  data they started with. Threads: any; serialised with other writes.
 *  @return 0; TS_ENOTFOUND; TS_EREADONLY; TS_ENOSPC (a full disk: nothing was removed). */
TS_API int ts_tensor_delete(ts_store *st, const char *name);

/* -- Writer ------------------------------------------------------------------------------- */

typedef struct ts_writer ts_writer;
typedef struct ts_group ts_group; /* a write group: see "Write groups" below */

#define TS_WRITE_REPLACE 0x1u /**< replace an existing tensor of the same name at commit */
#define TS_WRITE_ENCODED 0x2u /**< data arrives encoded: see ts_writer_append_encoded() */
/** The tensor is read by rows: gathered (ts_read_rows(): a token embedding) or sharded along its
 *  rows (vocab parallelism), not cut into column shards. Its tiles span whole rows, as few rows
 *  as fill their pages' LMDB runs to 95% (docs/FORMAT.md section 4, rule 5), so a gathered row
 *  reads one page: of a 4096-wide nvfp4 tensor 7 rows in 16 KiB instead of 8 pages of 28 x 512
 *  in 8 KiB; raw BF16 10 rows in 84 KiB instead of 8 pages of 32 KiB; lossless a page of the
 *  codec's size (256 KiB) holding 31 whole rows instead of 4 such pages of 1024 columns. A column
 *  shard of such a tensor reads every page. ts_policy_write_flags() says which tensors
 *  `tstore import` and save_file() write so. */
#define TS_WRITE_ROWS 0x4u

typedef struct ts_write_opts {
	unsigned flags;
	float amax;          /**< the tensor's amax; required for nvfp4 and fp8 (NaN = not given) */
	uint64_t page_bytes; /**< target encoded page size, k * 4096 - 16 bytes; 0 = default:
				  at most 16368 for nvfp4 and mxfp4, 32752 for int8 and fp8,
				  65520 for raw, 262128 for lossless; smaller where tiles align
				  with eighth-width column shards (a 4096-column nvfp4 tensor:
				  28 x 512 tiles in 8176-byte pages; docs/FORMAT.md section 4);
				  with TS_WRITE_ROWS as large as its whole-row tiles need */
	float tensor_scale;  /**< TS_WRITE_ENCODED only: the decode scale exactly as the source
				  stores it (e.g. ModelOpt's weight_scale_2), overriding the one
				  derived from amax; NaN = derive it from amax */
	ts_group *group;     /**< NULL: ts_writer_commit() publishes the tensor; else it stages
				  it in this open write group of the same store, to be published
				  with the group by ts_group_commit() */
} ts_write_opts;

/** Fill @p opts with the defaults: no flags, amax NaN (not given), page_bytes 0 (by codec),
 *  tensor_scale NaN, group NULL. */
TS_API void ts_write_opts_init(ts_write_opts *opts);

/**
 * Copy tensor @p name of store @p src into store @p dst as it is stored: its pages, each verified
 * (checksum, and the geometry its record implies) and sealed anew under @p dst's tensor id, and
 * its record (codec, geometry, amax, tensor scale, statistics). Nothing is decoded or encoded:
 * the copy decodes to exactly the values of the original. Pages are committed in batches as
 * ts_writer_append() commits them; the tensor becomes visible as a writer's would: at once, or
 * with opts->group when that group is published.
 * @param opts NULL or as for ts_writer_begin(): TS_WRITE_REPLACE and group are used, every other
 *             field is ignored.
 * @return 0; TS_ENOTFOUND (no tensor @p name in @p src); TS_EEXIST (in @p dst, without
 *         TS_WRITE_REPLACE); TS_ECORRUPT (a record or page of @p src is damaged: nothing of the
 *         copy stays in @p dst); TS_EREADONLY (@p dst is read-only); TS_EINVAL (NULL arguments,
 *         @p src and @p dst the same handle, a reserved name, a group of another store);
 *         TS_EBUSY (another writer of @p dst is active); TS_ENOSPC; TS_EIO.
 * Threads: as a writer of @p dst; @p src only reads, in one read transaction.
 */
TS_API int ts_tensor_copy(ts_store *dst, ts_store *src, const char *name,
			  const ts_write_opts *opts);

/**
 * ts_tensor_copy() of the @p n tensors @p names (distinct) of @p src into @p dst, in as few
 * write transactions as their pages allow: tensors are grouped into transactions of up to 8 MiB
 * of pages (each page written once, into LMDB's page, and sealed there), where ts_tensor_copy()
 * commits each tensor in its own transactions; a store's commit flushes to disk, so this is the
 * way to move many small tensors. A tensor of more than 8 MiB goes alone through
 * ts_tensor_copy()'s batches (memory stays bounded). Tensors are copied in the order given; on
 * failure those of the transactions already committed stay (published, or staged in
 * opts->group: abort the group to drop them), those of the failing one do not.
 * @param opts as for ts_tensor_copy().
 * @return 0 (also for @p n 0); TS_EINVAL (NULL store, @p names NULL with @p n > 0, one handle,
 *         a reserved or empty name, a name given twice) and TS_ENOTFOUND (a name not in @p src),
 *         both before anything is written; otherwise as ts_tensor_copy().
 * Threads: as ts_tensor_copy().
 */
TS_API int ts_tensor_copy_many(ts_store *dst, ts_store *src, const char *const *names, size_t n,
			       const ts_write_opts *opts);

/**
 * Begin writing tensor @p name of shape @p shape (@p ndim 0..TS_MAX_DIMS; 0 is a scalar; a zero
 * dimension makes an empty tensor) and source dtype @p src_dtype, encoded as @p cfg.
 * Lossy codecs take F32, BF16 or F16 sources; raw takes exactly cfg->raw_dtype; nvfp4 and fp8
 * need opts->amax (scan the source first). Nothing is visible to readers until
 * ts_writer_commit(); pages are committed in batches as they are encoded, and removed again by
 * ts_writer_abort() or, after a crash, by the next writer. One writer at a time per store.
 *
 * @param out  receives the writer; it must end in ts_writer_commit() or ts_writer_abort().
 * @param opts NULL: defaults (ts_write_opts_init()).
 * @return 0; TS_EEXIST if @p name exists and TS_WRITE_REPLACE is not set; TS_EREADONLY;
 *         TS_EINVAL (bad name, shape, configuration, page size, missing or non-finite amax,
 *         opts->group not open on @p st);
 *         TS_EDTYPE (a source dtype the codec cannot take); TS_ENOTSUP (TS_WRITE_ENCODED for a
 *         codec other than nvfp4, mxfp4, fp8); TS_EBUSY if another writer is active.
 * Threads: a writer is used by one thread at a time (any thread); it encodes on the store's
 *          worker pool.
 */
TS_API int ts_writer_begin(ts_writer **out, ts_store *st, const char *name, ts_dtype src_dtype,
			   int ndim, const uint64_t *shape, const ts_codec_config *cfg,
			   const ts_write_opts *opts);

/** Append the next @p bytes of the tensor's elements in row-major order (any chunk size, a whole
 *  number of elements). The data is copied or encoded before the call returns, and every batch
 *  of pages it filled is committed: a committer thread commits one batch while the next is
 *  encoded, so large appends (a whole tensor) overlap the two. Memory stays bounded (a tile-row
 *  band of at most 4 MiB of source, its decoded copy, and two 4 MiB batches of pages) whatever
 *  the tensor's size. After a failure the writer only accepts
 *  ts_writer_abort() (ts_writer_commit() returns the same error).
 *  @return 0; TS_ERANGE if more data than the shape holds; TS_EINVAL (not whole elements);
 *          TS_ENONFINITE (NaN or Inf for a lossy codec: ts_error_last() gives tensor, page, row
 *          and column); TS_ENOSPC (full disk or map that may not grow: the store is unchanged
 *          apart from pages that the abort or the next writer removes); TS_EIO. */
TS_API int ts_writer_append(ts_writer *w, const void *data, size_t bytes);

/** With TS_WRITE_ENCODED: append the next @p row_count whole rows already encoded, in the layout
 *  ts_read_encoded() returns: @p codes holds row_count code-plane rows (each padded to whole
 *  blocks), @p scales row_count scale-plane rows (NULL and 0 for fp8); sizes must match exactly.
 *  The tensor scale is opts->tensor_scale if given, else derived from opts->amax. The pages are
 *  byte-identical to those of the same codes encoded by ts_writer_append().
 *  @return 0; TS_EINVAL (sizes); TS_ERANGE (more rows than the shape); TS_ENOSPC; TS_EIO. */
TS_API int ts_writer_append_encoded(ts_writer *w, const void *codes, size_t codes_size,
				    const void *scales, size_t scales_size, uint64_t row_count);

/** Finish the tensor and make it visible atomically, replacing (with TS_WRITE_REPLACE) the old
 *  tensor of that name in the same transaction. @p w is freed whatever the result; on failure
 *  nothing becomes visible. @p info (may be NULL) receives the new tensor's description.
 *  A writer begun with opts->group stages the tensor in that group instead: nothing becomes
 *  visible until ts_group_commit(); a tensor of the same name staged earlier in the group is
 *  superseded (its pages are removed in the same transaction). The tensor's last pages (less
 *  than one commit batch, 4 MiB) may stay in memory, to be committed with the next tensors'
 *  pages or by ts_group_commit(), so that small tensors share transactions (and flushes to
 *  disk); a failure to commit them is returned by a later append or commit of the group's
 *  writers, or by ts_group_commit().
 *  @return 0; TS_EINVAL if fewer elements than the shape holds were appended; TS_EEXIST; the
 *          error of an earlier append; TS_ENOSPC; TS_EIO. */
TS_API int ts_writer_commit(ts_tensor_info *info, ts_writer *w);

/** Discard the tensor being written, removing the pages already committed, and free @p w.
 *  NULL accepted. */
TS_API void ts_writer_abort(ts_writer *w);

/* -- Write groups ------------------------------------------------------------------------- */

/*
 * A write group publishes several tensors at once, or none: tensors written with
 * ts_write_opts.group are staged by ts_writer_commit() — pages committed to the store as they
 * are encoded (a tensor's last ones with the next tensors', less than a batch held), so memory
 * stays bounded however many and however large the tensors are, but no record visible — and
 * ts_group_commit() publishes them all in ONE write transaction,
 * replacing (TS_WRITE_REPLACE) existing tensors of the same names and freeing their pages.
 * Until then readers see the store as before the group; ts_group_abort() discards the staged
 * tensors. A process killed at any point leaves either none or all of the group visible; what
 * it staged is an interrupted write that the next writer removes (docs/FORMAT.md, section 7).
 *
 * One group per store handle at a time. Writers of the group run one at a time, as all writers
 * do; writers without a group may run between them (they are published as usual).
 * ts_store_check() cannot repair while a group is open (TS_EBUSY).
 */

/**
 * Open a write group on @p st (opened for writing).
 * @param out receives the group; it must end in ts_group_commit() or ts_group_abort(), before
 *            ts_store_close().
 * @return 0; TS_EBUSY if a group is open on @p st already; TS_EREADONLY; TS_EINVAL; TS_ENOMEM.
 * Threads: a group is used by one thread at a time (any thread).
 */
TS_API int ts_group_begin(ts_group **out, ts_store *st);

/**
 * Publish every tensor staged in @p g in one write transaction and free @p g. Existing tensors
 * of staged names are replaced (their pages freed) if their writer had TS_WRITE_REPLACE; a
 * name that exists without it fails the whole group. On failure nothing is published, the
 * staged tensors are discarded and @p g is freed too — except for TS_EBUSY.
 * @param published (may be NULL) number of tensors published.
 * @return 0; TS_EBUSY if a writer of the group, or another writer of the store, is still open
 *         (nothing happened: @p g stays open; end the writer and call again); TS_EEXIST;
 *         TS_ENOSPC (a full disk; the store is as before the group); TS_EINVAL; TS_EIO.
 */
TS_API int ts_group_commit(uint64_t *published, ts_group *g);

/**
 * Discard every tensor staged in @p g, removing their pages, and free @p g. The store is as
 * before the group. If the removal fails (a full disk) the pages stay, invisible, until the
 * next writer removes them. NULL accepted. No writer of the group may be open; a writer of
 * another thread is waited for.
 */
TS_API void ts_group_abort(ts_group *g);

/** Number of tensors staged in @p g (a name staged twice counts once); 0 for NULL. */
TS_API size_t ts_group_count(const ts_group *g);

/* -- Attachments -------------------------------------------------------------------------- */

/*
 * An attachment is a file stored with the tensors: a model directory's config.json, tokenizer
 * files, chat templates. It is kept exactly as a raw U8 tensor of shape [size] is — pages with
 * XXH3 checksums, the streaming writer, write groups, deletion, ts_store_check() — under a key
 * of its own namespace (docs/FORMAT.md, section 3.1), so that an attachment and a tensor never
 * share a name, and ts_tensor_foreach() never lists an attachment.
 * An attachment's name is a relative path: 1..TS_MAX_ATTACHMENT_NAME bytes, components
 * separated by '/', none of them empty, "." or "..", no NUL, not beginning with '/'.
 * Threads: as the tensor calls they mirror.
 */

#define TS_MAX_ATTACHMENT_NAME 505 /**< TS_MAX_NAME less the namespace's 6-byte prefix */

/**
 * Begin writing attachment @p name of exactly @p size bytes: the writer takes the bytes with
 * ts_writer_append() and ends in ts_writer_commit() (which publishes it, or stages it in
 * opts->group) or ts_writer_abort(), as for a tensor. TS_WRITE_REPLACE replaces an attachment
 * of the same name; TS_WRITE_ENCODED is refused. Stored raw (U8, 64 KiB pages).
 * @return 0; TS_EINVAL (a name that is not a relative path as above, bad options); TS_EEXIST;
 *         TS_EREADONLY; TS_EBUSY (another writer is active); TS_ENOMEM.
 */
TS_API int ts_attachment_begin(ts_writer **out, ts_store *st, const char *name, uint64_t size,
			       const ts_write_opts *opts);

/** The size in bytes of attachment @p name.
 *  @return 0; TS_ENOTFOUND; TS_EINVAL (not an attachment name); TS_ECORRUPT (a damaged record,
 *          or one that is not a U8 vector). */
TS_API int ts_attachment_size(uint64_t *size, ts_store *st, const char *name);

/** Read bytes [offset, offset + size) of attachment @p name into @p dst, every page verified.
 *  @return 0; TS_ENOTFOUND; TS_EINVAL; TS_ERANGE (past its end); TS_ECORRUPT (ts_error_last()
 *          names the attachment and page); TS_EIO. */
TS_API int ts_attachment_read(void *dst, ts_store *st, const char *name, uint64_t offset,
			      size_t size);

/**
 * Call @p cb for every attachment, in name order (byte-wise), with its size. The names are read
 * in one short read transaction first, so @p cb may take its time and may read or write the
 * store. A non-zero return from @p cb stops the walk and is returned. @p name is valid only
 * during the call.
 * @return 0; the non-zero value of @p cb; TS_ECORRUPT (a damaged record); TS_ENOMEM.
 */
TS_API int ts_attachment_foreach(ts_store *st,
				 int (*cb)(void *ud, const char *name, uint64_t size), void *ud);

/** Delete attachment @p name and its pages in one transaction.
 *  @return 0; TS_ENOTFOUND; TS_EINVAL; TS_EREADONLY; TS_ENOSPC. */
TS_API int ts_attachment_delete(ts_store *st, const char *name);

/* -- Store metadata ----------------------------------------------------------------------- */

/*
 * A store keeps one metadata text beside its tensors: by convention a JSON object of string
 * values, the safetensors "__metadata__" of the checkpoint it was imported from (`tstore import`
 * stores it, `tstore export` writes it back, the Python package's save_file() and metadata()
 * use it). The library keeps the bytes as given and never parses them. It is written only
 * through a write group, so it is published in the same transaction as the group's tensors.
 */

#define TS_METADATA_MAX (16u << 20) /**< longest metadata text in bytes, excluding the NUL */

/**
 * Stage @p text (@p len bytes of UTF-8 without NUL; copied) as the store's metadata, to be
 * published by ts_group_commit() in the group's transaction, replacing the metadata before
 * (even if the group stages no tensor). @p len 0 removes it at commit. A second call replaces
 * what the first staged; ts_group_abort() discards it.
 * @return 0; TS_EINVAL (NULL group, NULL text with len > 0, a NUL byte in the text, len over
 *         TS_METADATA_MAX); TS_ENOMEM.
 * Threads: as the group (one thread at a time).
 */
TS_API int ts_group_metadata_set(ts_group *g, const char *text, size_t len);

/**
 * Copy the store's metadata, NUL-terminated, into @p out of @p size bytes, from one consistent
 * snapshot. A store without metadata gives "" (*len 0). @p len (may be NULL) receives the
 * length without the NUL, also when the buffer is too small; @p out may be NULL when @p size
 * is 0 (ask for the length first).
 * @return 0; TS_ESHORTBUF if @p size <= the length; TS_ECORRUPT if the record holds a NUL
 *         byte; TS_EINVAL for a NULL store. Threads: any.
 */
TS_API int ts_store_metadata_get(char *out, size_t size, size_t *len, ts_store *st);

/* -- Checking and copying ----------------------------------------------------------------- */

typedef enum ts_problem_kind {
	TS_PROBLEM_RECORD = 1,    /**< a tensor record is malformed */
	TS_PROBLEM_MISSING = 2,   /**< a page of a tensor is missing */
	TS_PROBLEM_CHECKSUM = 3,  /**< a page fails its checksum */
	TS_PROBLEM_GEOMETRY = 4,  /**< a page's header disagrees with its tensor */
	TS_PROBLEM_ORPHAN = 5,    /**< a page belongs to no tensor */
	TS_PROBLEM_UNFINISHED = 6,/**< pages of an interrupted write */
	TS_PROBLEM_STRUCTURE = 7  /**< LMDB's own structure is damaged */
} ts_problem_kind;

typedef struct ts_problem {
	ts_problem_kind kind;
	const char *tensor; /**< NULL if none applies */
	int64_t page;       /**< -1 if none applies */
	const char *detail;
} ts_problem;

#define TS_CHECK_REPAIR 0x1u /**< remove orphans and unfinished writes (needs TS_OPEN_WRITE) */

/** Options of ts_store_check(); fill with ts_check_opts_init() first. */
typedef struct ts_check_opts {
	unsigned flags; /**< TS_CHECK_REPAIR or 0 */
	/** Called for each problem, with the tensor and page it concerns (may be NULL); the
	 *  strings of @p p are valid only during the call, and it must not write to the store. */
	void (*problem)(void *ud, const ts_problem *p);
	/** Progress through the pages, the bulk of the work (may be NULL): @p done bytes of pages
	 *  (header and payload) verified so far of @p total in the snapshot checked. Called once
	 *  with done 0 before the page walk, then after every page; done never decreases and the
	 *  last call has done == total (unless LMDB's structure is damaged: then it may stop
	 *  short, and is not called at all if the total cannot be counted). Runs on the calling
	 *  thread; must not call into the store. A repair's own work reports no progress.
	 *  Counting the total costs one extra walk of the pages database's leaf entries (not of
	 *  the page bodies), done only when this is set. */
	void (*progress)(void *ud, uint64_t done, uint64_t total);
	void *ud; /**< passed to both callbacks */
} ts_check_opts;

/** Fill @p opts with the defaults: no flags, no callbacks. */
TS_API void ts_check_opts_init(ts_check_opts *opts);

/**
 * Verify the whole store in one consistent snapshot: every tensor record, that every page of
 * every tensor exists exactly once with the geometry and checksum its record implies, orphan
 * pages (of no tensor, or beyond a tensor's page count), unfinished writes, and the meta records.
 * Calls opts->problem for each problem and opts->progress as the pages are verified.
 * With TS_CHECK_REPAIR (store opened for writing, no writer active) it then removes orphan pages
 * and unfinished writes and fixes a next tensor id that is too low; it never touches the pages of
 * a valid record, and removes no orphan while any record is damaged (its pages look orphaned).
 * The problems reported are those found before the repair.
 *
 * @param problems (may be NULL) number of problems found
 * @param opts     NULL: check only, no callbacks (ts_check_opts_init())
 * @return 0 when the check ran (problems may be > 0); TS_EREADONLY or TS_EBUSY for a repair that
 *         cannot run; TS_EINVAL for a NULL store or unknown flags; another negative code if the
 *         check could not run.
 */
TS_API int ts_store_check(uint64_t *problems, ts_store *st, const ts_check_opts *opts);

/** Write a compacted copy of the store (free pages dropped, LMDB's mdb_env_copy2 with
 *  MDB_CP_COMPACT) to the new file @p path, from one consistent snapshot; writes may continue
 *  meanwhile. @return 0; TS_EEXIST if @p path exists (it is never overwritten); TS_ENOSPC;
 *  TS_EIO (a partial copy is removed). */
TS_API int ts_store_copy_compact(ts_store *st, const char *path);

/* ------------------------------------------------------------------------------------------ */
/* The memory-hierarchy model                                                                  */
/* ------------------------------------------------------------------------------------------ */

/*
 * A hardware profile describes the levels a page can be held in, with capacity, bandwidth and
 * latency, and how fast each codec decodes. Two kinds exist:
 *   - "blackwell": reference figures of a Blackwell GPU host (see docs/RESIDENCY.md), built in;
 *   - "measured": THIS machine, measured by ts_hw_profile_measure() / ts_store_calibrate() and
 *     saved in a profile file (docs/RESIDENCY.md, "The profile file").
 * The tiered residency policy takes its costs from the profile of its store.
 * All functions in this section are pure computations on the profile unless said otherwise;
 * any thread.
 */

/** Levels of the memory hierarchy, fastest first. Values are part of the profile file. */
typedef enum ts_mem_level {
	TS_MEM_REGISTERS = 0,
	TS_MEM_L1 = 1,
	TS_MEM_L2 = 2,
	TS_MEM_HBM = 3,     /**< GPU memory; absent (capacity 0) in a profile of a host without */
	TS_MEM_RAM = 4,     /**< system RAM */
	TS_MEM_STORAGE = 5, /**< the device the store lives on */
	TS_MEM_LEVEL_COUNT
} ts_mem_level;

/** "registers", "l1", "l2", "hbm", "ram", "storage"; "?" if unknown. */
TS_API const char *ts_mem_level_name(ts_mem_level level);
/** Parse a level name (as above, case-insensitive). 0 or TS_EINVAL. */
TS_API int ts_mem_level_parse(ts_mem_level *out, const char *name);

typedef struct ts_mem_level_info {
	uint64_t capacity_bytes; /**< 0: the level is absent from this machine */
	double bandwidth_gbps;   /**< 10^9 bytes per second (RAM: memcpy rate, bytes copied;
				      storage: random reads of page_bytes at the queue depth used) */
	double latency_us;       /**< fixed cost of one access (storage: one page read at QD 1,
				      minus its transfer time) */
	int measured;            /**< 1 measured on this machine; 0 a reference or assumed figure */
} ts_mem_level_info;

#define TS_HW_NAME_MAX 32

typedef struct ts_hw_profile {
	char name[TS_HW_NAME_MAX]; /**< "blackwell", "measured" */
	ts_mem_level_info level[TS_MEM_LEVEL_COUNT];
	/** Decode throughput of each codec to F32 on one core, in 10^9 elements per second, for
	 *  pages of page_bytes (index: ts_codec; raw means raw_dtype BF16 widened to F32). */
	double decode_geps[TS_CODEC_COUNT];
	uint64_t page_bytes;       /**< storage figures are for reads of pages of this size */
	ts_io_backend io;          /**< backend the storage figures were measured with */
	int queue_depth;           /**< storage bandwidth: reads in flight */
	char kernel[16];           /**< kernel set the decode figures were measured with */
	int64_t calibrated_at;     /**< Unix time of the measurement; 0 for a built-in profile */
	double calibration_seconds;/**< how long the measurement took */
} ts_hw_profile;

/**
 * Fill @p out with the built-in profile @p name: "blackwell" (reference figures).
 * @return 0; TS_ENOTFOUND for another name ("measured" profiles come from a measurement or a file).
 */
TS_API int ts_hw_profile_builtin(ts_hw_profile *out, const char *name);

/** Bandwidth of @p level in GB/s (10^9 B/s).
 *  0 for an absent level or an unknown @p level. */
TS_API double ts_hw_bandwidth_gbps(const ts_hw_profile *p, ts_mem_level level);

/**
 * Modelled time, in microseconds, to move @p bytes from @p level: latency + bytes / bandwidth.
 * +Inf for an absent level or an unknown @p level.
 */
TS_API double ts_hw_transfer_time_us(const ts_hw_profile *p, ts_mem_level level, double bytes);

/** Modelled time, in microseconds, to decode @p elements of @p codec to F32: elements /
 *  decode_geps. +Inf if the profile has no figure for @p codec. */
TS_API double ts_hw_decode_time_us(const ts_hw_profile *p, ts_codec codec, double elements);

typedef struct ts_calibrate_opts {
	double seconds;     /**< time budget of the whole measurement; 0: 2 s (at least 0.05 s) */
	const char *path;   /**< a file on the device to measure (the store's data file); NULL or
				 too small (< 16 MiB): a scratch file is written next to it (or in
				 $TMPDIR) and removed */
	uint64_t page_bytes;/**< page size to read and decode; 0: 65520 (the store's default) */
	ts_io_backend io;   /**< backend to read with; TS_IO_DEFAULT as ts_store_open() resolves it */
} ts_calibrate_opts;

/** Fill @p opts with the defaults. */
TS_API void ts_calibrate_opts_init(ts_calibrate_opts *opts);

/**
 * Measure this machine: cache and RAM bandwidth and latency, storage random-read bandwidth
 * (batches of 32 reads through the I/O backend ts_store_open() would use: io_uring at queue
 * depth 32, or the pread threads) and latency (queue depth 1) with O_DIRECT reads of page-sized
 * aligned runs, and the decode throughput of every codec with the
 * kernels in effect. Levels that cannot be measured here (registers, an absent HBM) keep the
 * reference figures with measured = 0, or capacity 0 when absent.
 * Takes about opts->seconds; allocates up to 2 x 64 MiB; any thread (not concurrently with
 * heavy work if the figures are to mean anything).
 * @return 0; TS_EIO (ts_error_last() names the file); TS_ENOMEM; TS_EINVAL.
 */
TS_API int ts_hw_profile_measure(ts_hw_profile *out, const ts_calibrate_opts *opts);

/**
 * Write @p p to the text file @p path (format in docs/RESIDENCY.md), atomically (a temporary
 * file renamed over @p path). @return 0; TS_EIO.
 */
TS_API int ts_hw_profile_save(const ts_hw_profile *p, const char *path);

/**
 * Read a profile file written by ts_hw_profile_save().
 * @return 0; TS_ENOTFOUND if there is no such file; TS_ECORRUPT naming the file and line if it
 *         is malformed or holds a figure that is not positive and finite; TS_EVERSION.
 */
TS_API int ts_hw_profile_load(ts_hw_profile *out, const char *path);

/**
 * The profile file of the store at @p store_path: "<store_path>-profile" (next to LMDB's
 * "<store_path>-lock"), unless TSTORE_PROFILE names another file. Writes at most @p size bytes
 * (NUL included). @return 0; TS_ESHORTBUF.
 */
TS_API int ts_hw_profile_path(char *out, size_t size, const char *store_path);


/**
 * The hardware profile pricing @p st's residency decisions: the one loaded from the store's
 * profile file (ts_hw_profile_path()) when the store was opened or since calibrated, else the
 * built-in "blackwell" profile (*measured set to 0). @p measured may be NULL.
 * @return 0; TS_EINVAL for NULLs.
 */
TS_API int ts_store_profile_get(ts_hw_profile *out, int *measured, ts_store *st);

/** Price @p st's residency decisions with @p p from now on (not saved). @return 0; TS_EINVAL. */
TS_API int ts_store_profile_set(ts_store *st, const ts_hw_profile *p);

/**
 * Calibrate: ts_hw_profile_measure() on the store's data file with its I/O backend and its
 * default page size (fields of @p opts left 0/NULL/DEFAULT take those), save the result to the
 * store's profile file, and use it from now on. @p out (may be NULL) receives the profile.
 * @return 0; TS_EIO (measuring or writing the profile file); TS_ENOMEM; TS_EINVAL.
 */
TS_API int ts_store_calibrate(ts_hw_profile *out, ts_store *st, const ts_calibrate_opts *opts);
/* ------------------------------------------------------------------------------------------ */
/* The read cache                                                                              */
/* ------------------------------------------------------------------------------------------ */

/*
 * Each store has one read cache, sized by ts_open_opts.cache_bytes (or TSTORE_CACHE_BYTES).
 * It can hold a page in two forms within ONE byte budget: decoded (fastest to
 * serve, largest) or compressed (the stored page; serving it costs a decode). A page in
 * neither form is read from storage. docs/RESIDENCY.md explains the policies.
 */
typedef enum ts_cache_policy {
	TS_CACHE_POLICY_DEFAULT = 0,      /**< TSTORE_CACHE_POLICY from the environment, else tiered */
	TS_CACHE_POLICY_TIERED = 1,       /**< both forms, by expected benefit per byte (TinyLFU
					       admission, count-min frequencies, read-ahead) */
	TS_CACHE_POLICY_DECODED_LRU = 2,  /**< decoded pages only, least recently used evicted */
	TS_CACHE_POLICY_DECODED_ONLY = 3  /**< decoded pages only, with the tiered policy's
					       admission and eviction (no compressed form) */
} ts_cache_policy;

/** "default", "tiered", "decoded-lru", "decoded-only"; "?" if unknown. */
TS_API const char *ts_cache_policy_name(ts_cache_policy policy);
/** Parse a policy name (as above). 0 or TS_EINVAL. */
TS_API int ts_cache_policy_parse(ts_cache_policy *out, const char *name);

/** Counters of the residency policy. Page accesses, not requests. */
typedef struct ts_residency_stats {
	ts_cache_policy policy;         /**< in effect, never DEFAULT */
	char profile[TS_HW_NAME_MAX];   /**< hardware profile pricing the decisions */
	uint64_t budget_bytes;
	uint64_t used_bytes;            /**< <= budget_bytes, always */
	uint64_t served_decoded;        /**< page accesses served from the decoded form */
	uint64_t served_compressed;     /**< ... from the compressed form (a decode) */
	uint64_t served_storage;        /**< ... read from storage (a read and a decode) */
	uint64_t decoded_pages;         /**< pages held decoded now (tiered: with their
					     compressed bytes, so demotion is free) */
	uint64_t decoded_bytes;
	uint64_t compressed_pages;      /**< pages held compressed only now */
	uint64_t compressed_bytes;
	uint64_t admitted;              /**< pages admitted to the main region */
	uint64_t rejected;              /**< pages refused by admission (less valuable than the
					     pages they would displace) */
	uint64_t evicted;               /**< pages dropped from RAM */
	uint64_t promoted;              /**< compressed -> decoded */
	uint64_t demoted;               /**< decoded -> compressed */
	uint64_t readahead_pages;       /**< pages read ahead of a sequential pattern */
	uint64_t readahead_used;        /**< of those, pages later accessed */
	double model_seconds;           /**< modelled time of the accesses served (profile) */
} ts_residency_stats;

/**
 * The residency counters of @p st's cache (all zero with the policy and budget in effect when
 * the cache is off). Any thread.
 * @return 0; TS_EINVAL.
 */
TS_API int ts_residency_stats_get(ts_residency_stats *out, ts_store *st);

/**
 * Replace the cache of @p st by an empty one with @p policy and @p budget bytes (-1: keep the
 * budget; 0: cache off). Cached pages are dropped; counters restart from zero.
 * Threads: no read may be in progress on @p st.
 * @return 0; TS_EINVAL; TS_ENOMEM.
 */
TS_API int ts_cache_configure(ts_store *st, ts_cache_policy policy, int64_t budget);

typedef struct ts_cache_stats {
	uint64_t budget_bytes;
	uint64_t used_bytes;
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
	uint64_t storage_reads;   /**< read operations on storage (pages that lie back to back in
				       the file are read together, up to 1 MiB per read) */
	uint64_t storage_bytes;   /**< bytes read from storage (aligned runs) */
	uint64_t map_fallbacks;   /**< pages copied from the map because the layout was unexpected */
} ts_cache_stats;

/** The cache counters of @p st (all zero for a NULL @p st). Any thread. */
TS_API void ts_cache_stats_get(ts_cache_stats *out, ts_store *st);

/** Drop every cached page (for benchmarks). */
TS_API void ts_cache_clear(ts_store *st);

/* ------------------------------------------------------------------------------------------ */
/* GPU decode (CUDA; docs/GPU.md)                                                              */
/* ------------------------------------------------------------------------------------------ */
/*
 * Built with `./configure --with-cuda`. In a build without it every function below returns
 * TS_ENOTSUP and ts_error_last() says "this build of libtstore has no GPU path"; ts_gpu_available()
 * says which build this is without an error. Device pointers and streams are CUDA's (void * here
 * so that this header needs no CUDA header): a stream of NULL is the legacy default stream.
 */

/** 1 if this build has the GPU path and a CUDA device is usable, else 0 (and ts_error_last()
 *  says why). Any thread. */
TS_API int ts_gpu_available(void);

/**
 * Decode on the GPU what ts_codec_decode() decodes on the CPU, bit for bit: a rows x cols matrix
 * encoded with @p cfg, whose payload (@p src_size bytes, device memory) is the codec's, or for
 * lossless the unpacked form ts_read_pages() gives, into @p dst (device memory) as @p dtype, row r
 * at element r * dst_stride. Enqueued on @p stream; returns before the work is done.
 * @return 0; TS_EDTYPE; TS_ESHORTBUF; TS_EINVAL; TS_ENOTSUP (no GPU path); TS_EIO (a CUDA error,
 *         named in ts_error_last()). A corrupt lossless payload is not detected here.
 */
TS_API int ts_gpu_decode(const ts_codec_config *cfg, float tensor_scale, const void *src,
			 size_t src_size, uint64_t rows, uint64_t cols, ts_dtype dtype, void *dst,
			 uint64_t dst_stride, void *stream);

/** A GPU reader: pinned host buffers, device staging buffers, streams and events, reused from
 *  read to read. One thread at a time per reader. */
typedef struct ts_gpu_reader ts_gpu_reader;

/**
 * Make a reader of store @p st for CUDA device @p device with @p slots (2..8; 0: 8) pinned and
 * device buffers of @p slot_bytes (0: 2 MiB; a larger page grows its slot) and slots - 1 filler
 * threads: while fillers read the pages of several slots at once, the GPU copies and decodes
 * those already read.
 * @return 0; TS_ENOTSUP (no GPU path); TS_EINVAL; TS_ENOMEM; TS_EIO (CUDA error).
 */
TS_API int ts_gpu_reader_new(ts_gpu_reader **out, ts_store *st, int device, int slots,
			     size_t slot_bytes);

/** Wait for the reader's work and free it (NULL is fine). */
TS_API void ts_gpu_reader_free(ts_gpu_reader *g);

/**
 * Read rows [row_start, row_start+row_count) and columns [col_start, col_start+col_count) of
 * tensor @p name (its 2-D view) into @p dst, device memory, as @p dtype (as ts_read_slice()):
 * row i of the rectangle at element i * dst_stride. The covering pages are read into the pinned
 * buffers on the CPU, copied and decoded on the GPU; the CPU decodes nothing (lossless: it
 * entropy-decodes the exponent frames, docs/GPU.md). Work queued on @p stream before the call is
 * done before @p dst is written, and work queued on it after the call sees the result. Returns
 * when every page is read and queued (not decoded).
 * @return as ts_read_slice(); TS_ENOTSUP (no GPU path); TS_EIO (a CUDA error).
 */
TS_API int ts_gpu_read(ts_gpu_reader *g, const char *name, uint64_t row_start, uint64_t row_count,
		       uint64_t col_start, uint64_t col_count, ts_dtype dtype, void *dst,
		       uint64_t dst_stride, void *stream);

/** One tensor rectangle of a ts_gpu_read_many() call: ts_gpu_read()'s arguments. */
typedef struct ts_gpu_request {
	const char *name;
	uint64_t row_start, row_count, col_start, col_count;
	ts_dtype dtype;
	void *dst; /**< device memory */
	uint64_t dst_stride;
} ts_gpu_request;

/**
 * ts_gpu_read() of @p n requests in one pipeline: every request is checked and planned before
 * anything is read, then the pages of all of them stream through the slots in order, so that the
 * storage keeps reading the next tensor's pages while the last batches of this one are copied and
 * decoded (a model load: one call for many tensors). Stream rule as ts_gpu_read(), for every
 * request. A bad request (a missing name, a dtype its codec cannot give, a stride too small)
 * fails the call before any destination is written; a read error (a damaged page, I/O) fails it
 * naming the tensor, after which the destinations' contents are unspecified.
 * @return as ts_gpu_read().
 */
TS_API int ts_gpu_read_many(ts_gpu_reader *g, const ts_gpu_request *reqs, size_t n,
			    void *stream);

/**
 * ts_read_encoded() into device memory: rows [row_start, row_start+row_count) of an nvfp4,
 * mxfp4 or fp8 tensor, the code plane into @p codes and the scale plane into @p scales (sizes
 * from ts_read_encoded_size()), the same bytes. With ts_tensor_info's tensor_scale this is
 * ModelOpt's NVFP4 triple (weight, weight_scale, weight_scale_2) that `tstore export --layout
 * modelopt` writes. Stream rule as ts_gpu_read().
 * @return as ts_read_encoded(); TS_ENOTSUP (no GPU path, or another codec); TS_EIO.
 */
TS_API int ts_gpu_read_encoded(ts_gpu_reader *g, const char *name, uint64_t row_start,
			       uint64_t row_count, void *codes, void *scales, void *stream);

/** Wait until everything the reader queued is done. 0 or TS_EIO (a CUDA error). */
TS_API int ts_gpu_reader_sync(ts_gpu_reader *g);

#ifdef __cplusplus
}
#endif
#endif /* TSTORE_H */
