/*
 * gen_checkpoint: writes an LLM-shaped example checkpoint in safetensors, deterministic for a
 * seed: token embedding, transformer layers (q/k/v/o attention projections with grouped
 * key/value heads, gate/up/down MLP, RMS norms as 1-D tensors), a final norm and an LM head.
 *
 * Statistics: weights are normal with std 0.02 (0.02/sqrt(2*layers) for the output
 * projections, as in GPT-2 style initialisation), and a few input channels of the projections
 * that read the residual stream carry outliers 8-20x larger, as trained LLMs do; norm weights
 * are 1 + N(0, 0.05).
 *
 * Invariants
 *   1. The values of a tensor depend only on the seed, its name and its shape: sharding or
 *      another dtype never changes them (beyond rounding).
 *   2. The program depends only on tools/cli/safetensors.c and tools/cli/json.c, not on the library.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/safetensors.h"

typedef struct rng {
	uint64_t s[4];
} rng;

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next(rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static void rng_seed(rng *r, uint64_t seed, const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	uint64_t x = seed ^ h;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&x);
}

static double uniform(rng *r)
{
	return ((next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Two standard normals (Box-Muller). */
static void normal2(rng *r, float *a, float *b)
{
	double u = uniform(r), v = uniform(r);
	double m = sqrt(-2.0 * log(u));
	*a = (float)(m * cos(2 * M_PI * v));
	*b = (float)(m * sin(2 * M_PI * v));
}

static uint16_t to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7FFFFFFF) > 0x7F800000)
		return (uint16_t)((u >> 16) | 0x40);
	u += 0x7FFF + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

static uint16_t to_f16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	uint32_t sign = (u >> 16) & 0x8000, a = u & 0x7FFFFFFF;
	if (a > 0x7F800000)
		return (uint16_t)(sign | 0x7E00);
	if (a >= 0x477FF000) /* rounds to >= 65520: Inf */
		return (uint16_t)(sign | 0x7C00);
	if (a < 0x38800000) { /* subnormal or zero in f16 */
		float af;
		memcpy(&af, &a, 4);
		float q = af * 16777216.0f; /* in units of 2^-24 */
		return (uint16_t)(sign | (uint32_t)nearbyintf(q));
	}
	uint32_t m = a + 0xC8000FFF + ((a >> 13) & 1); /* rebias 127->15 and round to nearest even */
	return (uint16_t)(sign | (m >> 13));
}

typedef enum kind { K_WEIGHT, K_NORM, K_I64, K_BOOL, K_F32VEC } kind;

typedef struct spec {
	char name[128];
	kind k;
	int ndim;
	uint64_t shape[2];
	double std;
	int outliers; /* outlier input channels */
	ts_dtype dtype;
} spec;

typedef struct model {
	spec *t;
	size_t n, cap;
} model;

static void add(model *m, const char *name, kind k, int ndim, uint64_t d0, uint64_t d1,
		double std, int outliers, ts_dtype dtype)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->t = realloc(m->t, m->cap * sizeof *m->t);
		if (!m->t) {
			perror("gen_checkpoint");
			exit(1);
		}
	}
	spec *s = &m->t[m->n++];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	s->k = k;
	s->ndim = ndim;
	s->shape[0] = d0;
	s->shape[1] = d1;
	s->std = std;
	s->outliers = outliers;
	s->dtype = dtype;
}

/* Store v at element i of the row buffer @p out in the dtype's little-endian encoding. */
static void put(uint8_t *out, uint64_t i, float v, ts_dtype dt)
{
	if (dt == TS_BF16 || dt == TS_F16) {
		uint16_t h = dt == TS_BF16 ? to_bf16(v) : to_f16(v);
		out[2 * i] = (uint8_t)h;
		out[2 * i + 1] = (uint8_t)(h >> 8);
		return;
	}
	memcpy(out + 4 * i, &v, 4); /* little-endian host */
}

static int write_tensor(FILE *f, const spec *s, uint64_t seed, int nonfinite)
{
	rng r;
	rng_seed(&r, seed, s->name);
	uint64_t rows = s->ndim == 2 ? s->shape[0] : 1, cols = s->ndim == 2 ? s->shape[1] : s->shape[0];
	if (s->ndim == 0)
		cols = 1;
	if (s->k == K_I64) {
		for (uint64_t i = 0; i < rows * cols; i++) {
			int64_t v = (int64_t)(i % cols);
			if (fwrite(&v, 8, 1, f) != 1)
				return -1;
		}
		return 0;
	}
	if (s->k == K_BOOL) {
		for (uint64_t i = 0; i < rows * cols; i++)
			if (fputc((i / cols) >= (i % cols), f) == EOF)
				return -1;
		return 0;
	}
	/* Outlier input channels: chosen per tensor, scaled 8-20x. */
	float *colscale = malloc(cols * sizeof *colscale);
	float *row = malloc((cols + 1) * sizeof *row);
	uint8_t *out = malloc(cols * 4);
	if (!colscale || !row || !out) {
		free(colscale);
		free(row);
		free(out);
		return -1;
	}
	for (uint64_t c = 0; c < cols; c++)
		colscale[c] = 1.0f;
	for (int o = 0; o < s->outliers; o++)
		colscale[next(&r) % cols] = (float)(8.0 + 12.0 * uniform(&r));
	int rc = 0;
	for (uint64_t i = 0; i < rows && !rc; i++) {
		for (uint64_t c = 0; c < cols; c += 2)
			normal2(&r, &row[c], &row[c + 1]);
		for (uint64_t c = 0; c < cols; c++) {
			float v;
			if (s->k == K_NORM)
				v = 1.0f + 0.05f * row[c];
			else if (s->k == K_F32VEC)
				v = powf(10000.0f, -(float)c / (float)cols);
			else
				v = (float)s->std * colscale[c] * row[c];
			if (nonfinite && i == rows / 2 && c == 0)
				v = NAN;
			if (nonfinite && i == rows / 2 && c == 1)
				v = INFINITY;
			put(out, c, v, s->dtype);
		}
		size_t nb = cols * (s->dtype == TS_F32 ? 4 : 2);
		if (fwrite(out, 1, nb, f) != nb)
			rc = -1;
	}
	free(colscale);
	free(row);
	free(out);
	return rc;
}

static int write_file(const char *path, const model *m, size_t first, size_t last, uint64_t seed,
		      const char *nonfinite)
{
	size_t n = last - first;
	st_out_tensor *ot = calloc(n ? n : 1, sizeof *ot);
	char tmp[4200];
	if (!ot)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const spec *s = &m->t[first + i];
		ot[i].name = s->name;
		ot[i].dtype = s->dtype;
		ot[i].ndim = s->ndim;
		ot[i].shape[0] = s->shape[0];
		ot[i].shape[1] = s->shape[1];
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		fprintf(stderr, "gen_checkpoint: %s: %s\n", tmp, strerror(errno));
		free(ot);
		return -1;
	}
	st_meta meta[2] = {{"format", "pt"}, {"generator", "tstore gen_checkpoint"}};
	uint64_t data_start;
	int rc = st_write_header(f, ot, n, meta, 2, &data_start, NULL);
	for (size_t i = 0; i < n && !rc; i++) {
		const spec *s = &m->t[first + i];
		rc = write_tensor(f, s, seed, nonfinite && !strcmp(nonfinite, s->name));
	}
	if (fclose(f) != 0)
		rc = -1;
	if (!rc && rename(tmp, path) != 0)
		rc = -1;
	if (rc) {
		fprintf(stderr, "gen_checkpoint: %s: write failed: %s\n", path, strerror(errno));
		remove(tmp);
	}
	free(ot);
	return rc;
}

static uint64_t spec_bytes(const spec *s)
{
	st_out_tensor t = {s->name, s->dtype, s->ndim, {s->shape[0], s->shape[1]}};
	int ovf;
	return st_tensor_bytes(&t, &ovf);
}

static void usage(FILE *f)
{
	fputs("usage: gen_checkpoint [options] -o OUT\n"
	      "Write an LLM-shaped example checkpoint (safetensors), deterministic for a seed.\n"
	      "  -o, --output PATH     the .safetensors file; with --shards N > 1, a directory that\n"
	      "                        receives model-0000K-of-0000N.safetensors and\n"
	      "                        model.safetensors.index.json\n"
	      "  --size tiny|small|demo  presets: tiny (~100 kB, for tests), small (~10 MB),\n"
	      "                        demo (~270 MB, the default)\n"
	      "  --layers N --hidden N --intermediate N --vocab N --kv-dim N   override the preset\n"
	      "  --dtype bf16|f16|f32  element type of the weights (default bf16)\n"
	      "  --seed N              (default 1)\n"
	      "  --shards N            split into N shards with an index (default 1)\n"
	      "  --extras              add an I64, a BOOL and an F32 1-D tensor\n"
	      "  --nonfinite NAME      put a NaN and an Inf into tensor NAME\n"
	      "  -q                    print nothing\n",
	      f);
}

int main(int argc, char **argv)
{
	const char *out = NULL, *size = "demo", *nonfinite = NULL;
	long layers = -1, hidden = -1, inter = -1, vocab = -1, kv = -1, shards = 1;
	unsigned long long seed = 1;
	int extras = 0, quiet = 0;
	ts_dtype dtype = TS_BF16;
	enum { O_SIZE = 256, O_LAYERS, O_HIDDEN, O_INTER, O_VOCAB, O_KV, O_DTYPE, O_SEED, O_SHARDS,
	       O_EXTRAS, O_NONFINITE };
	static const struct option lo[] = {
		{"output", required_argument, 0, 'o'},	   {"size", required_argument, 0, O_SIZE},
		{"layers", required_argument, 0, O_LAYERS}, {"hidden", required_argument, 0, O_HIDDEN},
		{"intermediate", required_argument, 0, O_INTER},
		{"vocab", required_argument, 0, O_VOCAB},   {"kv-dim", required_argument, 0, O_KV},
		{"dtype", required_argument, 0, O_DTYPE},   {"seed", required_argument, 0, O_SEED},
		{"shards", required_argument, 0, O_SHARDS}, {"extras", no_argument, 0, O_EXTRAS},
		{"nonfinite", required_argument, 0, O_NONFINITE},
		{"help", no_argument, 0, 'h'},		   {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'q': quiet = 1; break;
		case O_SIZE: size = optarg; break;
		case O_LAYERS: layers = atol(optarg); break;
		case O_HIDDEN: hidden = atol(optarg); break;
		case O_INTER: inter = atol(optarg); break;
		case O_VOCAB: vocab = atol(optarg); break;
		case O_KV: kv = atol(optarg); break;
		case O_SEED: seed = strtoull(optarg, NULL, 0); break;
		case O_SHARDS: shards = atol(optarg); break;
		case O_EXTRAS: extras = 1; break;
		case O_NONFINITE: nonfinite = optarg; break;
		case O_DTYPE:
			if (!strcmp(optarg, "bf16")) dtype = TS_BF16;
			else if (!strcmp(optarg, "f16")) dtype = TS_F16;
			else if (!strcmp(optarg, "f32")) dtype = TS_F32;
			else {
				fprintf(stderr, "gen_checkpoint: --dtype must be bf16, f16 or f32\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!out || optind != argc) {
		usage(stderr);
		return 2;
	}
	long P[5];
	if (!strcmp(size, "tiny")) {
		long p[5] = {2, 64, 176, 512, 16};
		memcpy(P, p, sizeof p);
	} else if (!strcmp(size, "small")) {
		long p[5] = {2, 256, 704, 4096, 64};
		memcpy(P, p, sizeof p);
	} else if (!strcmp(size, "demo")) {
		long p[5] = {6, 1024, 2816, 32000, 256};
		memcpy(P, p, sizeof p);
	} else {
		fprintf(stderr, "gen_checkpoint: --size must be tiny, small or demo\n");
		return 2;
	}
	if (layers >= 0) P[0] = layers;
	if (hidden > 0) P[1] = hidden;
	if (inter > 0) P[2] = inter;
	if (vocab > 0) P[3] = vocab;
	if (kv > 0) P[4] = kv;
	if (P[1] % 2 || P[2] % 2 || P[4] % 2 || shards < 1 || shards > 9999) {
		fprintf(stderr, "gen_checkpoint: dimensions must be even and shards in 1..9999\n");
		return 2;
	}
	uint64_t L = (uint64_t)P[0], H = (uint64_t)P[1], I = (uint64_t)P[2], V = (uint64_t)P[3],
		 KV = (uint64_t)P[4];
	double out_std = 0.02 / sqrt(2.0 * (double)(L ? L : 1));
	model m = {0};
	char nm[128];
	add(&m, "model.embed_tokens.weight", K_WEIGHT, 2, V, H, 0.02, 0, dtype);
	for (uint64_t l = 0; l < L; l++) {
#define N(s) (snprintf(nm, sizeof nm, "model.layers.%llu.%s", (unsigned long long)l, s), nm)
		add(&m, N("input_layernorm.weight"), K_NORM, 1, H, 0, 0, 0, dtype);
		add(&m, N("self_attn.q_proj.weight"), K_WEIGHT, 2, H, H, 0.02, 4, dtype);
		add(&m, N("self_attn.k_proj.weight"), K_WEIGHT, 2, KV, H, 0.02, 4, dtype);
		add(&m, N("self_attn.v_proj.weight"), K_WEIGHT, 2, KV, H, 0.02, 4, dtype);
		add(&m, N("self_attn.o_proj.weight"), K_WEIGHT, 2, H, H, out_std, 0, dtype);
		add(&m, N("post_attention_layernorm.weight"), K_NORM, 1, H, 0, 0, 0, dtype);
		add(&m, N("mlp.gate_proj.weight"), K_WEIGHT, 2, I, H, 0.02, 4, dtype);
		add(&m, N("mlp.up_proj.weight"), K_WEIGHT, 2, I, H, 0.02, 4, dtype);
		add(&m, N("mlp.down_proj.weight"), K_WEIGHT, 2, H, I, out_std, 2, dtype);
#undef N
	}
	add(&m, "model.norm.weight", K_NORM, 1, H, 0, 0, 0, dtype);
	add(&m, "lm_head.weight", K_WEIGHT, 2, V, H, 0.02, 0, dtype);
	if (extras) {
		add(&m, "model.position_ids", K_I64, 2, 1, 64, 0, 0, TS_I64);
		add(&m, "model.causal_mask", K_BOOL, 2, 8, 8, 0, 0, TS_BOOL);
		add(&m, "model.rotary_emb.inv_freq", K_F32VEC, 1, 32, 0, 0, 0, TS_F32);
	}
	if (nonfinite) {
		int found = 0;
		for (size_t i = 0; i < m.n; i++)
			found |= !strcmp(m.t[i].name, nonfinite);
		if (!found) {
			fprintf(stderr, "gen_checkpoint: --nonfinite: no tensor named '%s'\n", nonfinite);
			return 2;
		}
	}
	uint64_t total = 0, params = 0;
	for (size_t i = 0; i < m.n; i++) {
		total += spec_bytes(&m.t[i]);
		params += m.t[i].shape[0] * (m.t[i].ndim == 2 ? m.t[i].shape[1] : 1);
	}
	if ((size_t)shards > m.n) {
		fprintf(stderr, "gen_checkpoint: %ld shards for %zu tensors\n", shards, m.n);
		return 2;
	}
	int rc = 0;
	if (shards == 1) {
		rc = write_file(out, &m, 0, m.n, seed, nonfinite);
	} else {
		/* Contiguous runs of tensors of about total/shards bytes each. */
		char path[4096], idx[4096];
		size_t first = 0;
		FILE *ix;
		snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", out);
		ix = fopen(idx, "w");
		if (!ix) {
			fprintf(stderr, "gen_checkpoint: %s: %s\n", idx, strerror(errno));
			return 1;
		}
		fprintf(ix, "{\n  \"metadata\": {\"total_size\": %llu},\n  \"weight_map\": {",
			(unsigned long long)total);
		uint64_t acc = 0;
		int firstent = 1;
		for (long k = 0; k < shards && !rc; k++) {
			size_t last = first;
			uint64_t goal = total * (uint64_t)(k + 1) / (uint64_t)shards;
			while (last < m.n) {
				if (last > first && m.n - last <= (size_t)(shards - 1 - k))
					break;
				if (k < shards - 1 && last > first && acc + spec_bytes(&m.t[last]) > goal)
					break;
				acc += spec_bytes(&m.t[last]);
				last++;
			}
			char base[64];
			snprintf(base, sizeof base, "model-%05ld-of-%05ld.safetensors", k + 1, shards);
			snprintf(path, sizeof path, "%s/%s", out, base);
			rc = write_file(path, &m, first, last, seed, nonfinite);
			for (size_t i = first; i < last; i++) {
				fprintf(ix, "%s\n    \"%s\": \"%s\"", firstent ? "" : ",", m.t[i].name, base);
				firstent = 0;
			}
			first = last;
		}
		fprintf(ix, "\n  }\n}\n");
		if (fclose(ix) != 0)
			rc = -1;
	}
	if (!rc && !quiet)
		printf("gen_checkpoint: %s: %zu tensors, %.1f M parameters, %.1f MB (%s, seed %llu%s)\n",
		       out, m.n, (double)params / 1e6, (double)total / 1e6,
		       dtype == TS_BF16 ? "BF16" : dtype == TS_F16 ? "F16" : "F32", seed,
		       shards > 1 ? ", sharded" : "");
	free(m.t);
	return rc ? 1 : 0;
}
