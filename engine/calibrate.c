/*
 * Calibration: measuring THIS machine into a hardware profile (engine/hierarchy.c has the model
 * the figures feed). Memory levels by timed copies and pointer chases, storage by timed reads
 * through the same I/O backends the reader uses (engine/io.h), decode rates by timing each
 * codec's kernel on a page of bell-shaped data.
 *
 * Invariants
 *   1. A measured figure is only ever the outcome of timing the operation it names on this
 *      machine; a figure that cannot be measured here keeps the reference value with
 *      measured = 0 (registers), or makes the level absent (HBM).
 *   2. Calibration never leaves a file behind: a scratch file is unlinked as soon as it is open.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/rng.h"
#include "engine/hierarchy.h"
#include "engine/io.h"

#define MIN_FILE_BYTES (16u << 20)
#define SCRATCH_MAX_BYTES (64u << 20)
#define RAM_BUF_BYTES (64u << 20)

/* -- Memory ------------------------------------------------------------------------------ */

static volatile uint64_t sink_u64; /* keeps measured loops from being optimized away */

/* Page-aligned anonymous memory, backed by huge pages where the kernel allows: faulting in
 * 64 MiB of 4 KiB pages costs more than the measurement itself on a VM with PTI. */
static void *big_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (bytes >= (2u << 20))
		madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

static void big_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

/*
 * Best memcpy rate (bytes copied per second, in GB/s) copying the first half of @p buf (of
 * @p bytes) to its second half. For cache-sized buffers, copies are timed in batches so that
 * reading the clock does not count.
 */
static double measure_copy_gbps(uint8_t *buf, size_t bytes, double seconds)
{
	size_t half = bytes / 2;
	size_t batch = half >= (8u << 20) ? 1 : (size_t)((8u << 20) / half);
	double best = 0, end = ts__clock_s() + seconds;
	int reps = 0;

	memset(buf, 1, bytes);
	do {
		double t0 = ts__clock_s();
		for (size_t i = 0; i < batch; i++) {
			buf[i % half] = (uint8_t)i;
			memcpy(buf + half, buf, half);
			__asm__ __volatile__("" : : "r"(buf) : "memory");
		}
		double dt = ts__clock_s() - t0;
		double rate = (double)half * (double)batch / dt / 1e9;
		if (rate > best)
			best = rate;
		reps++;
	} while (reps < 2 || ts__clock_s() < end);
	sink_u64 += buf[bytes - 1];
	return best;
}

/* Mean latency (us) of a dependent load over a random cycle through the cache lines of @p buf. */
static double measure_chase_us(uint8_t *buf, size_t bytes, double seconds, uint64_t seed)
{
	size_t lines = bytes / 64;
	uint64_t *w = (uint64_t *)(void *)buf;
	uint32_t *perm;
	double t0, dt;
	uint64_t steps = 0, idx = 0;

	if (lines < 2 || !(perm = malloc(lines * sizeof(*perm))))
		return -1;
	/* Sattolo's algorithm: one cycle through every line, in random order. */
	for (size_t i = 0; i < lines; i++)
		perm[i] = (uint32_t)i;
	for (size_t i = lines - 1; i > 0; i--) {
		size_t j = ts__rng_next(&seed) % i;
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (size_t i = 0; i < lines; i++)
		w[i * 8] = perm[i];
	free(perm);
	t0 = ts__clock_s();
	do {
		for (int k = 0; k < 4096; k++)
			idx = w[idx * 8];
		steps += 4096;
		dt = ts__clock_s() - t0;
	} while (dt < seconds);
	sink_u64 += idx;
	return dt / (double)steps * 1e6;
}

static uint64_t sysconf_or(int name, uint64_t dflt)
{
	long v = sysconf(name);
	return v > 0 ? (uint64_t)v : dflt;
}

/* -- Storage ----------------------------------------------------------------------------- */

static uint64_t random_offset(uint64_t *seed, uint64_t file_bytes, size_t io_bytes)
{
	uint64_t slots = (file_bytes - io_bytes) / 4096 + 1;
	return (ts__rng_next(seed) % slots) * 4096;
}

/* Write a scratch file of @p bytes in @p dir and unlink it; *fd_out stays open on it. */
static int scratch_file(const char *dir, uint64_t bytes, int *fd_out)
{
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/.tstore-calibrate-XXXXXX", dir) >= (int)sizeof(path))
		return ts__err(TS_EINVAL, "calibration: directory name too long (%s)", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return ts__err_errno(errno, "calibration: cannot create a scratch file in %s", dir);
	unlink(path); /* invariant 2 */
	if (!(buf = malloc(1u << 20))) {
		close(fd);
		return ts__err(TS_ENOMEM, "calibration: no memory for the scratch file");
	}
	for (uint64_t done = 0; done < bytes && !rc; done += 1u << 20) {
		for (size_t i = 0; i < (1u << 20); i += 8) {
			uint64_t v = ts__rng_next(&seed);
			memcpy(buf + i, &v, 8);
		}
		if (write(fd, buf, 1u << 20) != (ssize_t)(1u << 20))
			rc = ts__err_errno(errno ? errno : EIO,
					   "calibration: cannot write the scratch file in %s", dir);
	}
	free(buf);
	if (!rc && fsync(fd))
		rc = ts__err_errno(errno, "calibration: cannot sync the scratch file in %s", dir);
	if (rc) {
		close(fd);
		return rc;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	*fd_out = fd;
	return 0;
}

static void dir_of(char *dir, size_t size, const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	if (!path || !*path) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, size, "%s", t && *t ? t : "/tmp");
	} else if (!slash) {
		snprintf(dir, size, ".");
	} else if (slash == path) {
		snprintf(dir, size, "/");
	} else {
		snprintf(dir, size, "%.*s", (int)(slash - path), path);
	}
}

/* Read batch @p b of @p n requests at random offsets through @p io; 0, or an error naming the
 * first read that failed. */
static int read_batch(struct ts__io *io, ts__io_batch *b, size_t n, const uint8_t *map,
		      uint64_t file_bytes, uint64_t *seed)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		ts__io_req *q = &b->reqs[i];
		q->offset = random_offset(seed, file_bytes, q->len);
		q->map_src = map ? map + q->offset : NULL;
	}
	b->n = n;
	if ((rc = ts__io_submit(io, b)) || (rc = ts__io_wait(io, b)))
		return ts__err_wrap(rc, "calibration: %s read", ts_io_backend_name(io->kind));
	for (size_t i = 0; i < n; i++) {
		const ts__io_req *q = &b->reqs[i];
		if (q->res != (ssize_t)q->len)
			return ts__err_errno(q->res < 0 ? (int)-q->res : EIO,
					     "calibration: %s read of %zu bytes at %llu",
					     ts_io_backend_name(io->kind), q->len,
					     (unsigned long long)q->offset);
	}
	return 0;
}

/*
 * Storage, through the I/O backend the reader uses (engine/io.h; TS_IO_DEFAULT resolves
 * TSTORE_IO, and uring falls back to pread as at ts_store_open()): QD-1 latency with single
 * reads, then bandwidth with batches as deep as the backend serves at once. mmap: page faults on
 * a mapping with MADV_RANDOM, after dropping the file's cached pages.
 */
static int measure_storage(ts_hw_profile *p, const ts_calibrate_opts *o, double seconds)
{
	char dir[PATH_MAX], src[PATH_MAX];
	struct stat sb;
	struct statvfs vfs;
	uint64_t seed = 0xC0FFEE123456789ull;
	size_t io_bytes = (size_t)((p->page_bytes + 16 + 4095) / 4096 * 4096);
	int fd = -1, rc = 0;
	uint64_t file_bytes = 0;
	struct ts__io *io = NULL;
	ts__io_req reqs[TS_IO_QD];
	ts__io_batch batch = {.reqs = reqs};
	uint8_t *bufs = NULL, *map = NULL;

	dir_of(dir, sizeof(dir), o->path);
	if (o->path && stat(o->path, &sb) == 0 && (uint64_t)sb.st_size >= MIN_FILE_BYTES) {
		fd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return ts__err_errno(errno, "calibration: cannot open %s", o->path);
		file_bytes = (uint64_t)sb.st_size;
		snprintf(src, sizeof(src), "%s", o->path);
	} else {
		uint64_t want = (uint64_t)(seconds * 64.0 * (1 << 20));
		if (want < MIN_FILE_BYTES)
			want = MIN_FILE_BYTES;
		if (want > SCRATCH_MAX_BYTES)
			want = SCRATCH_MAX_BYTES;
		want = want / (1u << 20) * (1u << 20);
		if ((rc = scratch_file(dir, want, &fd)))
			return rc;
		file_bytes = want;
		/* the backend opens the unlinked file afresh (O_DIRECT) through its descriptor */
		snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
	}
	if ((rc = ts__io_create(&io, src, o->io)))
		goto out;
	if (!io->direct)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (io_bytes > file_bytes / 4)
		io_bytes = (size_t)(file_bytes / 4 / 4096 * 4096);
	if (posix_memalign((void **)&bufs, TS_IO_ALIGN, io_bytes * TS_IO_QD)) {
		bufs = NULL;
		rc = ts__err(TS_ENOMEM, "calibration: no memory for %u reads of %zu bytes", TS_IO_QD,
			     io_bytes);
		goto out;
	}
	for (size_t i = 0; i < TS_IO_QD; i++)
		reqs[i] = (ts__io_req){.len = io_bytes, .buf = bufs + i * io_bytes};
	if (io->kind == TS_IO_MMAP) {
		map = mmap(NULL, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			rc = ts__err_errno(errno, "calibration: cannot map the file in %s", dir);
			goto out;
		}
		madvise(map, file_bytes, MADV_RANDOM);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}

	/* QD 1: the latency of one page read. */
	double t_lat = seconds * 0.4, t0 = ts__clock_s(), dt;
	uint64_t ops = 0;
	do {
		if (map && ops % 64 == 63)
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if ((rc = read_batch(io, &batch, 1, map, file_bytes, &seed)))
			goto out;
		ops++;
		dt = ts__clock_s() - t0;
	} while (ops < 4 || (dt < t_lat && ops < 100000));
	double qd1_us = dt / (double)ops * 1e6;

	/* Bandwidth at the backend's concurrency; mmap reads one page at a time. */
	double bw_gbps;
	int qd = io->kind == TS_IO_MMAP ? 1 : io->depth;
	if (io->kind == TS_IO_MMAP) {
		bw_gbps = (double)io_bytes / (qd1_us * 1e-6) / 1e9;
	} else {
		double t_bw = seconds * 0.6;
		ops = 0;
		t0 = ts__clock_s();
		do {
			if ((rc = read_batch(io, &batch, TS_IO_QD, NULL, file_bytes, &seed)))
				goto out;
			ops += TS_IO_QD;
			dt = ts__clock_s() - t0;
		} while (dt < t_bw);
		bw_gbps = (double)ops * (double)io_bytes / dt / 1e9;
	}
	if (!(bw_gbps > 0)) {
		rc = ts__err(TS_EIO, "calibration: no storage read completed in %s", dir);
		goto out;
	}
	double transfer_us = (double)io_bytes / (bw_gbps * 1e3);
	double lat = qd1_us - transfer_us;
	if (lat < qd1_us * 0.1)
		lat = qd1_us * 0.1;
	ts_mem_level_info *st = &p->level[TS_MEM_STORAGE];
	st->bandwidth_gbps = bw_gbps;
	st->latency_us = lat;
	st->measured = 1;
	st->capacity_bytes = statvfs(dir, &vfs) == 0 ? (uint64_t)vfs.f_blocks * vfs.f_frsize
						      : file_bytes;
	if (st->capacity_bytes == 0)
		st->capacity_bytes = file_bytes;
	p->io = io->kind;
	p->queue_depth = qd;
out:
	if (map)
		munmap(map, file_bytes);
	free(bufs);
	ts__io_free(io);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* -- Decode ------------------------------------------------------------------------------ */

static int measure_decode(ts_hw_profile *p, double seconds)
{
	int rc = 0;
	const double per = seconds / TS_CODEC_COUNT;

	for (int c = 0; c < TS_CODEC_COUNT && !rc; c++) {
		ts_codec_config cfg = ts_codec_config_default((ts_codec)c);
		if (c == TS_CODEC_RAW) {
			cfg.raw_dtype = TS_BF16;
			cfg.bits_per_value = 16;
		}
		const uint64_t cols = 1024;
		uint64_t rows = p->page_bytes * 8 / (uint64_t)cfg.bits_per_value / cols;
		if (rows < 1)
			rows = 1;
		uint64_t n = rows * cols;
		float *src = malloc(n * sizeof(float)), *dst = malloc(n * sizeof(float));
		uint16_t *bf = malloc(n * sizeof(uint16_t));
		size_t enc_size = ts_codec_encoded_size(&cfg, rows, cols), enc_len = 0;
		uint8_t *enc = enc_size ? malloc(enc_size) : NULL;
		uint64_t seed = 12345 + (uint64_t)c;
		float amax = 0;

		if (!src || !dst || !bf || !enc) {
			rc = enc_size ? ts__err(TS_ENOMEM, "calibration: no memory for decode buffers")
				      : ts__err(TS_EINTERNAL, "calibration: no encoded size for %s",
						ts_codec_name((ts_codec)c));
			goto next;
		}
		for (uint64_t i = 0; i < n; i++) {
			/* sum of 4 uniforms: bell-shaped, like weights */
			double u = 0;
			for (int k = 0; k < 4; k++)
				u += (double)(ts__rng_next(&seed) >> 11) * 0x1.0p-53;
			src[i] = (float)((u - 2.0) * 1.7);
			if (fabsf(src[i]) > amax)
				amax = fabsf(src[i]);
			bf[i] = ts_f32_to_bf16(src[i]);
		}
		int from_bf16 = c == TS_CODEC_RAW || c == TS_CODEC_LOSSLESS; /* BF16 checkpoints */
		const void *in = from_bf16 ? (const void *)bf : (const void *)src;
		ts_dtype in_dtype = from_bf16 ? TS_BF16 : TS_F32;
		rc = ts_codec_encode_len(&enc_len, &cfg, amax, in, in_dtype, cols, rows, cols, enc,
					 enc_size);
		if (rc) {
			rc = ts__err_wrap(rc, "calibration: encoding %s", ts_codec_name((ts_codec)c));
			goto next;
		}
		float tscale = ts_codec_tensor_scale(&cfg, amax);
		double best = 0, end = ts__clock_s() + per;
		int reps = 0;
		do {
			double t0 = ts__clock_s();
			rc = ts_codec_decode(&cfg, tscale, enc, enc_len, rows, cols, TS_F32, dst, cols);
			double dt = ts__clock_s() - t0;
			if (rc) {
				rc = ts__err_wrap(rc, "calibration: decoding %s", ts_codec_name((ts_codec)c));
				goto next;
			}
			if (dt > 0 && (double)n / dt / 1e9 > best)
				best = (double)n / dt / 1e9;
			reps++;
		} while (reps < 3 || ts__clock_s() < end);
		p->decode_geps[c] = best;
	next:
		free(src);
		free(dst);
		free(bf);
		free(enc);
	}
	snprintf(p->kernel, sizeof(p->kernel), "%s", ts_kernel_name());
	return rc;
}

TS_API void ts_calibrate_opts_init(ts_calibrate_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->seconds = 2.0;
	opts->page_bytes = TS__PROFILE_PAGE_BYTES;
	opts->io = TS_IO_DEFAULT;
}

TS_API int ts_hw_profile_measure(ts_hw_profile *out, const ts_calibrate_opts *opts)
{
	ts_calibrate_opts o;
	ts_hw_profile p;
	double t_start = ts__clock_s();
	int rc;

	if (!out)
		return ts__err(TS_EINVAL, "ts_hw_profile_measure: NULL profile");
	if (opts)
		o = *opts;
	else
		ts_calibrate_opts_init(&o);
	if (!(o.seconds > 0))
		o.seconds = 2.0;
	if (o.seconds < 0.05)
		o.seconds = 0.05;
	if (o.seconds > 600)
		return ts__err(TS_EINVAL, "calibration: %g seconds is more than 600", o.seconds);
	if (o.page_bytes == 0)
		o.page_bytes = TS__PROFILE_PAGE_BYTES;
	if (o.page_bytes < 256 || o.page_bytes > (64u << 20))
		return ts__err(TS_EINVAL, "calibration: page size %llu outside 256 B .. 64 MiB",
			       (unsigned long long)o.page_bytes);

	ts_hw_profile_builtin(&p, "blackwell");
	snprintf(p.name, sizeof(p.name), "measured");
	snprintf(p.kernel, sizeof(p.kernel), "?");
	p.page_bytes = o.page_bytes;
	const double s = o.seconds;

	/* Registers cannot be timed apart from the instructions that use them: reference figure,
	 * capacity of this machine's architectural vector and general registers. */
	p.level[TS_MEM_REGISTERS].capacity_bytes = 16 * 32 + 16 * 8;
	p.level[TS_MEM_REGISTERS].measured = 0;
	/* No GPU memory on this host. */
	p.level[TS_MEM_HBM] = (ts_mem_level_info){0, 0, 0, 0};

	uint64_t l1 = sysconf_or(_SC_LEVEL1_DCACHE_SIZE, 32u << 10);
	uint64_t l2 = sysconf_or(_SC_LEVEL2_CACHE_SIZE, 1u << 20);
	uint64_t ram = sysconf_or(_SC_PHYS_PAGES, 0) * sysconf_or(_SC_PAGESIZE, 4096);
	/* Working sets: half of L1 and of L2; for RAM, well beyond the last-level cache (smaller
	 * for short calibrations: faulting the buffer in is most of their cost). */
	size_t ram_buf = s >= 1.0 ? 2 * RAM_BUF_BYTES : RAM_BUF_BYTES;
	struct {
		ts_mem_level level;
		uint64_t capacity;
		size_t buf_bytes;
		double share;
	} mem[] = {
		{TS_MEM_L1, l1, (size_t)l1 / 2, 0.04},
		{TS_MEM_L2, l2, (size_t)l2 / 2, 0.06},
		{TS_MEM_RAM, ram, ram_buf, 0.20},
	};
	for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]); i++) {
		uint8_t *buf = big_alloc(mem[i].buf_bytes);
		if (!buf)
			return ts__err(TS_ENOMEM, "calibration: no memory to measure %s",
				       ts_mem_level_name(mem[i].level));
		double bw = measure_copy_gbps(buf, mem[i].buf_bytes, s * mem[i].share * 0.5);
		double lat = measure_chase_us(buf, mem[i].buf_bytes, s * mem[i].share * 0.5, 77 + i);
		big_free(buf, mem[i].buf_bytes);
		if (!(bw > 0) || !(lat > 0))
			return ts__err(TS_ENOMEM, "calibration: no memory to measure %s",
				       ts_mem_level_name(mem[i].level));
		p.level[mem[i].level] = (ts_mem_level_info){mem[i].capacity, bw, lat, 1};
	}
	if ((rc = measure_storage(&p, &o, s * 0.45)))
		return rc;
	if ((rc = measure_decode(&p, s * 0.25)))
		return rc;
	p.calibrated_at = (int64_t)time(NULL);
	p.calibration_seconds = ts__clock_s() - t_start;
	*out = p;
	return 0;
}
