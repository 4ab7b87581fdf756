/*
 * The memory-hierarchy model: levels (registers, L1, L2, HBM, RAM, storage) with capacity,
 * bandwidth and latency, and codec decode rates; the seed's reference profile ("blackwell"); the
 * measurement of THIS machine (calibration); and the profile file.
 *
 * The model is deliberately simple: moving b bytes from a level costs latency + b / bandwidth,
 * decoding n elements costs n / rate. Everything the residency policy decides is priced with
 * these two formulas (engine/residency.c), so the profile is the one place where this machine's
 * speed enters the policy.
 *
 * Invariants
 *   1. A level with capacity 0 is absent: its bandwidth and latency are 0 and every transfer
 *      from it is +Inf. A present level has bandwidth > 0 and latency >= 0, finite.
 *   2. A measured figure is only ever the outcome of timing the operation it names on this
 *      machine; a figure that cannot be measured here keeps the reference value with
 *      measured = 0 (registers), or makes the level absent (HBM).
 *   3. ts_hw_profile_load() accepts only what invariant 1 allows, with every level and every
 *      codec given, so the policy never divides by zero or by a figure nobody measured.
 *   4. Calibration never leaves a file behind: a scratch file is unlinked as soon as it is open.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"
#include "common/error.h"
#include "engine/hierarchy.h"
#include "engine/io.h"

#define PROFILE_FORMAT 1
#define DEFAULT_PAGE_BYTES 65520u
#define MIN_FILE_BYTES (16u << 20)
#define SCRATCH_MAX_BYTES (64u << 20)
#define RAM_BUF_BYTES (64u << 20)
#define URING_QD 32
#define PREAD_THREADS 4

static const char *const level_names[TS_MEM_LEVEL_COUNT] = {"registers", "l1", "l2",
							     "hbm",       "ram", "storage"};

/* Codec names as they appear in the profile file (kept here so that loading a profile does not
 * depend on the codec library). Index: ts_codec. */
static const char *const codec_names[TS_CODEC_COUNT] = {"raw", "nvfp4", "mxfp4", "int8", "fp8",
							 "lossless"};
/* Codecs a profile file must give: those older than the file format (lossless came later; a
 * profile without it models lossless pages as undecodable, +Inf, until recalibrated). */
#define REQUIRED_CODECS ((1u << TS_CODEC_LOSSLESS) - 1)

static const char *const io_names[] = {"default", "uring", "pread", "mmap"};

TS_API const char *ts_mem_level_name(ts_mem_level level)
{
	if ((unsigned)level >= TS_MEM_LEVEL_COUNT)
		return "?";
	return level_names[level];
}

TS_API int ts_mem_level_parse(ts_mem_level *out, const char *name)
{
	for (int i = 0; name && i < TS_MEM_LEVEL_COUNT; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (ts_mem_level)i;
			return 0;
		}
	}
	return ts__err(TS_EINVAL, "unknown memory level '%s'", name ? name : "(null)");
}

/* -- The reference profile --------------------------------------------------------------- */

/*
 * The seed's figures (../shared/seed/blackwell-api.md): registers ~10 KB; L1 ~128 KB, 100+ GB/s;
 * L2 ~6 MB, 50 GB/s; HBM ~24 GB, 8 TB/s; system RAM ~32 GB, 50 GB/s; NVMe ~1 TB, 7 GB/s;
 * "hardware decompression: 800 GB/s". The seed gives no latencies and no register bandwidth:
 * those below are our assumptions, documented in docs/RESIDENCY.md.
 */
TS_API int ts_hw_profile_builtin(ts_hw_profile *out, const char *name)
{
	if (!out || !name)
		return ts__err(TS_EINVAL, "ts_hw_profile_builtin: NULL argument");
	if (strcasecmp(name, "blackwell") != 0)
		return ts__err(TS_ENOTFOUND, "no built-in hardware profile named '%s' (built in: "
					     "blackwell)", name);
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "blackwell");
	static const ts_mem_level_info ref[TS_MEM_LEVEL_COUNT] = {
		[TS_MEM_REGISTERS] = {10240ull, 10000.0, 0.001, 0},
		[TS_MEM_L1] = {128ull << 10, 100.0, 0.02, 0},
		[TS_MEM_L2] = {6ull << 20, 50.0, 0.2, 0},
		[TS_MEM_HBM] = {24ull << 30, 8000.0, 0.5, 0},
		[TS_MEM_RAM] = {32ull << 30, 50.0, 0.1, 0},
		[TS_MEM_STORAGE] = {1000000000000ull, 7.0, 80.0, 0},
	};
	memcpy(out->level, ref, sizeof(ref));
	/* 800 GB/s of decompressed output, read as F32 elements: 200 G elements/s. */
	for (int c = 0; c < TS_CODEC_COUNT; c++)
		out->decode_geps[c] = 200.0;
	out->page_bytes = DEFAULT_PAGE_BYTES;
	out->io = TS_IO_URING;
	out->queue_depth = URING_QD;
	snprintf(out->kernel, sizeof(out->kernel), "hardware");
	return 0;
}

/* -- The model --------------------------------------------------------------------------- */

static int level_present(const ts_hw_profile *p, ts_mem_level level)
{
	return p && (unsigned)level < TS_MEM_LEVEL_COUNT && p->level[level].capacity_bytes > 0 &&
	       p->level[level].bandwidth_gbps > 0;
}

TS_API double ts_hw_bandwidth_gbps(const ts_hw_profile *p, ts_mem_level level)
{
	return level_present(p, level) ? p->level[level].bandwidth_gbps : 0.0;
}

TS_API double ts_hw_transfer_time_us(const ts_hw_profile *p, ts_mem_level level, double bytes)
{
	if (!level_present(p, level) || !(bytes >= 0))
		return INFINITY;
	/* bytes / (GB/s * 1e9 B/s) seconds = bytes / (GB/s * 1e3) microseconds */
	return p->level[level].latency_us + bytes / (p->level[level].bandwidth_gbps * 1e3);
}

TS_API double ts_hw_decode_time_us(const ts_hw_profile *p, ts_codec codec, double elements)
{
	if (!p || (unsigned)codec >= TS_CODEC_COUNT || !(p->decode_geps[codec] > 0) ||
	    !(elements >= 0))
		return INFINITY;
	return elements / (p->decode_geps[codec] * 1e3);
}

/* -- Measurement ------------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: deterministic, cheap; calibration needs spread, not quality. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

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
	double best = 0, end = now_s() + seconds;
	int reps = 0;

	memset(buf, 1, bytes);
	do {
		double t0 = now_s();
		for (size_t i = 0; i < batch; i++) {
			buf[i % half] = (uint8_t)i;
			memcpy(buf + half, buf, half);
			__asm__ __volatile__("" : : "r"(buf) : "memory");
		}
		double dt = now_s() - t0;
		double rate = (double)half * (double)batch / dt / 1e9;
		if (rate > best)
			best = rate;
		reps++;
	} while (reps < 2 || now_s() < end);
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
		size_t j = rng_next(&seed) % i;
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (size_t i = 0; i < lines; i++)
		w[i * 8] = perm[i];
	free(perm);
	t0 = now_s();
	do {
		for (int k = 0; k < 4096; k++)
			idx = w[idx * 8];
		steps += 4096;
		dt = now_s() - t0;
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

typedef struct storage_job {
	int fd;
	int direct;
	uint64_t file_bytes;
	size_t io_bytes;
	double deadline;
	uint64_t seed;
	uint64_t ops;
	int err;
} storage_job;

static uint64_t random_offset(uint64_t *seed, uint64_t file_bytes, size_t io_bytes)
{
	uint64_t slots = (file_bytes - io_bytes) / 4096 + 1;
	return (rng_next(seed) % slots) * 4096;
}

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
	ssize_t r = pread(fd, buf, n, (off_t)off);
	if (r < 0)
		return -errno;
	return (size_t)r == n ? 0 : -EIO;
}

static void *pread_worker(void *arg)
{
	storage_job *j = arg;
	void *buf = NULL;

	if (posix_memalign(&buf, 4096, j->io_bytes)) {
		j->err = -ENOMEM;
		return NULL;
	}
	while (now_s() < j->deadline) {
		int rc = read_full(j->fd, buf, j->io_bytes,
				   random_offset(&j->seed, j->file_bytes, j->io_bytes));
		if (rc) {
			j->err = rc;
			break;
		}
		j->ops++;
	}
	free(buf);
	return NULL;
}

/* Batched random reads through io_uring at queue depth URING_QD; returns ops or -errno. */
static int64_t uring_batches(int fd, uint64_t file_bytes, size_t io_bytes, double deadline,
			     uint64_t *seed)
{
	struct io_uring ring;
	void *bufs[URING_QD] = {0};
	int64_t ops = 0;
	int rc = io_uring_queue_init(URING_QD, &ring, 0);

	if (rc < 0)
		return rc;
	for (int i = 0; i < URING_QD; i++) {
		if (posix_memalign(&bufs[i], 4096, io_bytes)) {
			rc = -ENOMEM;
			goto out;
		}
	}
	do {
		for (int i = 0; i < URING_QD; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_read(sqe, fd, bufs[i], (unsigned)io_bytes,
					   random_offset(seed, file_bytes, io_bytes));
		}
		rc = io_uring_submit_and_wait(&ring, URING_QD);
		if (rc < 0)
			goto out;
		for (int i = 0; i < URING_QD; i++) {
			struct io_uring_cqe *cqe;
			rc = io_uring_wait_cqe(&ring, &cqe);
			if (rc < 0)
				goto out;
			int res = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			if (res < 0) {
				rc = res;
				goto out;
			}
			if ((size_t)res != io_bytes) {
				rc = -EIO;
				goto out;
			}
		}
		ops += URING_QD;
	} while (now_s() < deadline);
	rc = 0;
out:
	for (int i = 0; i < URING_QD; i++)
		free(bufs[i]);
	io_uring_queue_exit(&ring);
	return rc < 0 ? rc : ops;
}

/* Write a scratch file of @p bytes in @p dir, open it for reading and unlink it. */
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
	unlink(path); /* invariant 4 */
	if (!(buf = malloc(1u << 20))) {
		close(fd);
		return ts__err(TS_ENOMEM, "calibration: no memory for the scratch file");
	}
	for (uint64_t done = 0; done < bytes && !rc; done += 1u << 20) {
		for (size_t i = 0; i < (1u << 20); i += 8) {
			uint64_t v = rng_next(&seed);
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
	/* Reopen through /proc so that O_DIRECT can be set on a fresh descriptor. */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int fd2 = open(proc, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd2 < 0)
		fd2 = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd2 < 0) {
		fd2 = fd; /* read through the descriptor we have */
	} else {
		close(fd);
	}
	posix_fadvise(fd2, 0, 0, POSIX_FADV_DONTNEED);
	*fd_out = fd2;
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

/*
 * Storage: QD-1 latency with single reads, then bandwidth with the backend's concurrency.
 * mmap: page faults on a mapping with MADV_RANDOM, after dropping the file's cached pages.
 */
static int measure_storage(ts_hw_profile *p, const ts_calibrate_opts *o, double seconds)
{
	char dir[PATH_MAX];
	struct stat sb;
	struct statvfs vfs;
	uint64_t seed = 0xC0FFEE123456789ull;
	size_t io_bytes = (size_t)((p->page_bytes + 16 + 4095) / 4096 * 4096);
	int fd = -1, direct = 1, rc = 0;
	uint64_t file_bytes = 0;
	ts_io_backend io;

	rc = ts__io_resolve(&io, o->io);
	if (rc < 0)
		return rc;
	dir_of(dir, sizeof(dir), o->path);
	if (o->path && stat(o->path, &sb) == 0 && (uint64_t)sb.st_size >= MIN_FILE_BYTES) {
		fd = open(o->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (fd < 0 && errno == EINVAL) {
			direct = 0;
			fd = open(o->path, O_RDONLY | O_CLOEXEC);
		}
		if (fd < 0)
			return ts__err_errno(errno, "calibration: cannot open %s", o->path);
		file_bytes = (uint64_t)sb.st_size;
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
		direct = (fcntl(fd, F_GETFL) & O_DIRECT) != 0;
	}
	if (!direct)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (io_bytes > file_bytes / 4)
		io_bytes = (size_t)(file_bytes / 4 / 4096 * 4096);

	void *buf = NULL;
	uint8_t *map = NULL;
	if (posix_memalign(&buf, 4096, io_bytes)) {
		rc = ts__err(TS_ENOMEM, "calibration: no memory for a %zu-byte read", io_bytes);
		goto out;
	}
	if (io == TS_IO_MMAP) {
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
	double t_lat = seconds * 0.4, t0 = now_s(), dt;
	uint64_t ops = 0;
	do {
		uint64_t off = random_offset(&seed, file_bytes, io_bytes);
		if (map) {
			if (ops % 64 == 63)
				posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			memcpy(buf, map + off, io_bytes);
		} else if ((rc = read_full(fd, buf, io_bytes, off))) {
			rc = ts__err_errno(-rc, "calibration: read of %zu bytes at %llu failed", io_bytes,
					   (unsigned long long)off);
			goto out;
		}
		ops++;
		dt = now_s() - t0;
	} while (ops < 4 || (dt < t_lat && ops < 100000));
	double qd1_us = dt / (double)ops * 1e6;

	/* Bandwidth at the backend's concurrency. */
	double t_bw = seconds * 0.6, bw_gbps = 0;
	int qd = 1;
	if (io == TS_IO_URING) {
		t0 = now_s();
		int64_t n = uring_batches(fd, file_bytes, io_bytes, t0 + t_bw, &seed);
		if (n == -ENOSYS || n == -EPERM || n == -ENOMEM) {
			io = TS_IO_PREAD; /* as ts_store_open() falls back; reported in p->io */
		} else if (n < 0) {
			rc = ts__err_errno((int)-n, "calibration: io_uring read failed in %s", dir);
			goto out;
		} else {
			dt = now_s() - t0;
			bw_gbps = (double)n * (double)io_bytes / dt / 1e9;
			qd = URING_QD;
		}
	}
	if (io == TS_IO_PREAD) {
		pthread_t th[PREAD_THREADS];
		storage_job jobs[PREAD_THREADS];
		int started = 0;
		t0 = now_s();
		for (int i = 0; i < PREAD_THREADS; i++) {
			jobs[i] = (storage_job){.fd = fd, .direct = direct, .file_bytes = file_bytes,
						.io_bytes = io_bytes, .deadline = t0 + t_bw,
						.seed = seed + (uint64_t)i * 7919};
			if (pthread_create(&th[i], NULL, pread_worker, &jobs[i]) == 0)
				started++;
			else
				break;
		}
		uint64_t total = 0;
		int err = 0;
		for (int i = 0; i < started; i++) {
			pthread_join(th[i], NULL);
			total += jobs[i].ops;
			if (jobs[i].err)
				err = jobs[i].err;
		}
		dt = now_s() - t0;
		if (err || !started) {
			rc = ts__err_errno(err ? -err : EAGAIN, "calibration: pread workers failed in %s",
					   dir);
			goto out;
		}
		bw_gbps = (double)total * (double)io_bytes / dt / 1e9;
		qd = started;
	}
	if (io == TS_IO_MMAP) {
		bw_gbps = (double)io_bytes / (qd1_us * 1e-6) / 1e9;
		qd = 1;
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
	p->io = io;
	p->queue_depth = qd;
out:
	if (map)
		munmap(map, file_bytes);
	free(buf);
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
						codec_names[c]);
			goto next;
		}
		for (uint64_t i = 0; i < n; i++) {
			/* sum of 4 uniforms: bell-shaped, like weights */
			double u = 0;
			for (int k = 0; k < 4; k++)
				u += (double)(rng_next(&seed) >> 11) * 0x1.0p-53;
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
			rc = ts__err_wrap(rc, "calibration: encoding %s", codec_names[c]);
			goto next;
		}
		float tscale = ts_codec_tensor_scale(&cfg, amax);
		double best = 0, end = now_s() + per;
		int reps = 0;
		do {
			double t0 = now_s();
			rc = ts_codec_decode(&cfg, tscale, enc, enc_len, rows, cols, TS_F32, dst, cols);
			double dt = now_s() - t0;
			if (rc) {
				rc = ts__err_wrap(rc, "calibration: decoding %s", codec_names[c]);
				goto next;
			}
			if (dt > 0 && (double)n / dt / 1e9 > best)
				best = (double)n / dt / 1e9;
			reps++;
		} while (reps < 3 || now_s() < end);
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
	opts->page_bytes = DEFAULT_PAGE_BYTES;
	opts->io = TS_IO_DEFAULT;
}

TS_API int ts_hw_profile_measure(ts_hw_profile *out, const ts_calibrate_opts *opts)
{
	ts_calibrate_opts o;
	ts_hw_profile p;
	double t_start = now_s();
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
		o.page_bytes = DEFAULT_PAGE_BYTES;
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
				       level_names[mem[i].level]);
		double bw = measure_copy_gbps(buf, mem[i].buf_bytes, s * mem[i].share * 0.5);
		double lat = measure_chase_us(buf, mem[i].buf_bytes, s * mem[i].share * 0.5, 77 + i);
		big_free(buf, mem[i].buf_bytes);
		if (!(bw > 0) || !(lat > 0))
			return ts__err(TS_ENOMEM, "calibration: no memory to measure %s",
				       level_names[mem[i].level]);
		p.level[mem[i].level] = (ts_mem_level_info){mem[i].capacity, bw, lat, 1};
	}
	if ((rc = measure_storage(&p, &o, s * 0.45)))
		return rc;
	if ((rc = measure_decode(&p, s * 0.25)))
		return rc;
	p.calibrated_at = (int64_t)time(NULL);
	p.calibration_seconds = now_s() - t_start;
	*out = p;
	return 0;
}

/* -- The profile file -------------------------------------------------------------------- */

TS_API int ts_hw_profile_path(char *out, size_t size, const char *store_path)
{
	const char *env = ts__env("TSTORE_PROFILE");
	int n;

	if (!out || !store_path)
		return ts__err(TS_EINVAL, "ts_hw_profile_path: NULL argument");
	if (env)
		n = snprintf(out, size, "%s", env);
	else
		n = snprintf(out, size, "%s-profile", store_path);
	if (n < 0 || (size_t)n >= size)
		return ts__err(TS_ESHORTBUF, "profile path for '%s' needs %d bytes", store_path, n + 1);
	return 0;
}

TS_API int ts_hw_profile_save(const ts_hw_profile *p, const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd;

	if (!p || !path)
		return ts__err(TS_EINVAL, "ts_hw_profile_save: NULL argument");
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return ts__err(TS_EINVAL, "profile path too long (%s)", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return ts__err_errno(errno, "cannot create %s", tmp);
	fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return ts__err_errno(errno, "cannot write %s", tmp);
	}
	fprintf(f, "# tstore hardware profile: see docs/RESIDENCY.md, \"The profile file\"\n");
	fprintf(f, "tstore-profile %d\n", PROFILE_FORMAT);
	fprintf(f, "name %s\n", p->name);
	fprintf(f, "calibrated_at %lld\n", (long long)p->calibrated_at);
	fprintf(f, "calibration_seconds %.17g\n", p->calibration_seconds);
	fprintf(f, "page_bytes %llu\n", (unsigned long long)p->page_bytes);
	fprintf(f, "io %s\n", (unsigned)p->io < 4 ? io_names[p->io] : "default");
	fprintf(f, "queue_depth %d\n", p->queue_depth);
	fprintf(f, "kernel %s\n", p->kernel[0] ? p->kernel : "?");
	fprintf(f, "# level NAME CAPACITY_BYTES BANDWIDTH_GBPS LATENCY_US MEASURED\n");
	for (int i = 0; i < TS_MEM_LEVEL_COUNT; i++)
		fprintf(f, "level %s %llu %.17g %.17g %d\n", level_names[i],
			(unsigned long long)p->level[i].capacity_bytes, p->level[i].bandwidth_gbps,
			p->level[i].latency_us, p->level[i].measured ? 1 : 0);
	fprintf(f, "# decode CODEC G_ELEMENTS_PER_SECOND (to F32, one core)\n");
	for (int c = 0; c < TS_CODEC_COUNT; c++)
		if (p->decode_geps[c] > 0) /* none: a profile loaded from before the codec */
			fprintf(f, "decode %s %.17g\n", codec_names[c], p->decode_geps[c]);
	int bad = ferror(f);
	bad |= fflush(f) != 0;
	bad |= fsync(fileno(f)) != 0;
	bad |= fclose(f) != 0;
	if (bad) {
		int e = errno ? errno : EIO;
		unlink(tmp);
		return ts__err_errno(e, "cannot write %s", tmp);
	}
	if (rename(tmp, path)) {
		int e = errno;
		unlink(tmp);
		return ts__err_errno(e, "cannot rename %s to %s", tmp, path);
	}
	return 0;
}

static int lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

static int finite_nonneg(double v)
{
	return isfinite(v) && v >= 0;
}

TS_API int ts_hw_profile_load(ts_hw_profile *out, const char *path)
{
	ts_hw_profile p;
	char line[512];
	unsigned seen_level = 0, seen_codec = 0;
	int seen_header = 0, seen_page = 0, lineno = 0, rc = 0;
	FILE *f;

	if (!out || !path)
		return ts__err(TS_EINVAL, "ts_hw_profile_load: NULL argument");
	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return ts__err(TS_ENOTFOUND, "no profile file %s", path);
		return ts__err_errno(errno, "cannot open profile file %s", path);
	}
	memset(&p, 0, sizeof(p));
#define BAD(...)                                                                      \
	do {                                                                          \
		char what_[256];                                                      \
		snprintf(what_, sizeof(what_), __VA_ARGS__);                          \
		rc = ts__err(TS_ECORRUPT, "profile file %s, line %d: %s", path, lineno, \
			     what_);                                                  \
		goto out;                                                             \
	} while (0)
	while (fgets(line, sizeof(line), f)) {
		char key[32], a[64];
		lineno++;
		if (!strchr(line, '\n') && !feof(f))
			BAD("line too long");
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (sscanf(line, "%31s", key) != 1)
			BAD("unreadable line");
		if (!seen_header) {
			int v;
			if (strcmp(key, "tstore-profile") != 0 ||
			    sscanf(line, "%*s %d", &v) != 1)
				BAD("not a tstore profile (no 'tstore-profile N' line first)");
			if (v != PROFILE_FORMAT) {
				rc = ts__err(TS_EVERSION, "profile file %s: format %d, this library "
							  "reads format %d", path, v, PROFILE_FORMAT);
				goto out;
			}
			seen_header = 1;
		} else if (strcmp(key, "name") == 0) {
			if (sscanf(line, "%*s %31s", p.name) != 1)
				BAD("no name");
		} else if (strcmp(key, "calibrated_at") == 0) {
			long long t;
			if (sscanf(line, "%*s %lld", &t) != 1 || t < 0)
				BAD("bad calibrated_at");
			p.calibrated_at = t;
		} else if (strcmp(key, "calibration_seconds") == 0) {
			if (sscanf(line, "%*s %lf", &p.calibration_seconds) != 1 ||
			    !finite_nonneg(p.calibration_seconds))
				BAD("bad calibration_seconds");
		} else if (strcmp(key, "page_bytes") == 0) {
			unsigned long long v;
			if (sscanf(line, "%*s %llu", &v) != 1 || v == 0 || v > (1ull << 32))
				BAD("bad page_bytes");
			p.page_bytes = v;
			seen_page = 1;
		} else if (strcmp(key, "io") == 0) {
			int i;
			if (sscanf(line, "%*s %63s", a) != 1 || (i = lookup(io_names, 4, a)) < 0)
				BAD("unknown io backend");
			p.io = (ts_io_backend)i;
		} else if (strcmp(key, "queue_depth") == 0) {
			if (sscanf(line, "%*s %d", &p.queue_depth) != 1 || p.queue_depth < 1 ||
			    p.queue_depth > 4096)
				BAD("bad queue_depth");
		} else if (strcmp(key, "kernel") == 0) {
			if (sscanf(line, "%*s %15s", p.kernel) != 1)
				BAD("no kernel");
		} else if (strcmp(key, "level") == 0) {
			unsigned long long cap;
			double bw, lat;
			int measured, i;
			if (sscanf(line, "%*s %63s %llu %lf %lf %d", a, &cap, &bw, &lat,
				   &measured) != 5)
				BAD("level: expected NAME CAPACITY BANDWIDTH LATENCY MEASURED");
			if ((i = lookup(level_names, TS_MEM_LEVEL_COUNT, a)) < 0)
				BAD("unknown level '%s'", a);
			if (!finite_nonneg(bw) || !finite_nonneg(lat) || (measured != 0 && measured != 1))
				BAD("level %s: figures must be finite and not negative", a);
			if (cap > 0 && !(bw > 0))
				BAD("level %s: a present level needs a positive bandwidth", a);
			if (cap == 0 && (bw != 0 || lat != 0))
				BAD("level %s: an absent level (capacity 0) has no figures", a);
			p.level[i] = (ts_mem_level_info){cap, bw, lat, measured};
			seen_level |= 1u << i;
		} else if (strcmp(key, "decode") == 0) {
			double v;
			int c;
			if (sscanf(line, "%*s %63s %lf", a, &v) != 2)
				BAD("decode: expected CODEC RATE");
			if ((c = lookup(codec_names, TS_CODEC_COUNT, a)) < 0)
				BAD("unknown codec '%s'", a);
			if (!isfinite(v) || !(v > 0))
				BAD("decode %s: the rate must be positive and finite", a);
			p.decode_geps[c] = v;
			seen_codec |= 1u << c;
		}
		/* Other keys: written by a newer library of the same format; ignored. */
	}
	if (ferror(f)) {
		rc = ts__err_errno(errno ? errno : EIO, "cannot read profile file %s", path);
		goto out;
	}
	lineno = 0;
	if (!seen_header)
		BAD("empty file");
	if (seen_level != (1u << TS_MEM_LEVEL_COUNT) - 1)
		BAD("not every level is given");
	if ((seen_codec & REQUIRED_CODECS) != REQUIRED_CODECS)
		BAD("not every codec's decode rate is given");
	if (!seen_page || !p.name[0])
		BAD("page_bytes or name missing");
	if (!(p.level[TS_MEM_RAM].capacity_bytes > 0 && p.level[TS_MEM_STORAGE].capacity_bytes > 0))
		BAD("ram and storage must be present");
	*out = p;
#undef BAD
out:
	fclose(f);
	return rc;
}

/* -- Page costs (engine/hierarchy.h) ----------------------------------------------------- */

void ts__hw_page_cost(const ts_hw_profile *p, ts_codec codec, uint64_t elements,
		      uint64_t stored_bytes, uint64_t decoded_bytes, ts__page_cost *out)
{
	double dec = ts_hw_decode_time_us(p, codec, (double)elements);
	double copy = ts_hw_transfer_time_us(p, TS_MEM_RAM, (double)decoded_bytes);
	double read = ts_hw_transfer_time_us(p, TS_MEM_STORAGE, (double)stored_bytes);

	/* Invariant 1 for profiles that passed validation; clamp defensively for hand-made ones. */
	if (!isfinite(dec))
		dec = 0;
	if (!isfinite(copy))
		copy = 0;
	if (!isfinite(read))
		read = 0;
	out->decoded_us = copy;
	out->compressed_us = dec;
	out->storage_us = read + dec;
}
