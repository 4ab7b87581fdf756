/*
 * Tests of the memory-hierarchy model: the reference profile's figures, the model's arithmetic
 * against hand-computed values, the profile file, and a short calibration of this machine.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/hierarchy.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/ts-hier-XXXXXX", t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_expect_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

#define NEAR(a, b) (fabs((a) - (b)) <= 1e-9 * fmax(1.0, fabs(b)))

Test(hierarchy, reference_profile_has_the_documented_figures)
{
	ts_hw_profile p;
	cr_assert_eq(ts_hw_profile_builtin(&p, "blackwell"), 0);
	cr_expect_str_eq(p.name, "blackwell");
	/* docs/RESIDENCY.md, the reference profile: L1 ~128KB 100+ GB/s, L2 ~6MB 50 GB/s,
	 * HBM ~24GB 8 TB/s, system RAM ~32GB 50 GB/s, NVMe ~1TB 7 GB/s, registers ~10KB. */
	cr_expect_eq(p.level[TS_MEM_REGISTERS].capacity_bytes, 10240);
	cr_expect_eq(p.level[TS_MEM_L1].capacity_bytes, 131072);
	cr_expect_eq(p.level[TS_MEM_L2].capacity_bytes, 6291456);
	cr_expect_eq(p.level[TS_MEM_HBM].capacity_bytes, 24ull * 1073741824ull);
	cr_expect_eq(p.level[TS_MEM_RAM].capacity_bytes, 32ull * 1073741824ull);
	cr_expect_eq(p.level[TS_MEM_STORAGE].capacity_bytes, 1000000000000ull);
	cr_expect_eq(ts_hw_bandwidth_gbps(&p, TS_MEM_L1), 100.0);
	cr_expect_eq(ts_hw_bandwidth_gbps(&p, TS_MEM_L2), 50.0);
	cr_expect_eq(ts_hw_bandwidth_gbps(&p, TS_MEM_HBM), 8000.0);
	cr_expect_eq(ts_hw_bandwidth_gbps(&p, TS_MEM_RAM), 50.0);
	cr_expect_eq(ts_hw_bandwidth_gbps(&p, TS_MEM_STORAGE), 7.0);
	for (int i = 0; i < TS_MEM_LEVEL_COUNT; i++)
		cr_expect_eq(p.level[i].measured, 0, "level %d", i);
	cr_expect_eq(ts_hw_profile_builtin(&p, "h100"), TS_ENOTFOUND);
}

Test(hierarchy, transfer_time_is_latency_plus_bytes_over_bandwidth)
{
	ts_hw_profile p;
	cr_assert_eq(ts_hw_profile_builtin(&p, "blackwell"), 0);
	/* NVMe: 80 us + 7e6 B / 7e9 B/s = 80 + 1000 us */
	cr_expect(NEAR(ts_hw_transfer_time_us(&p, TS_MEM_STORAGE, 7e6), 1080.0));
	/* RAM: 0.1 us + 1048576 B / 50e9 B/s = 0.1 + 20.97152 us */
	cr_expect(NEAR(ts_hw_transfer_time_us(&p, TS_MEM_RAM, 1048576), 21.07152));
	/* L2: 0.2 us + 6 MiB / 50e9 B/s = 0.2 + 125.82912 us */
	cr_expect(NEAR(ts_hw_transfer_time_us(&p, TS_MEM_L2, 6291456), 126.02912));
	/* HBM: 0.5 us + 8e9 B / 8e12 B/s = 0.5 + 1000 us */
	cr_expect(NEAR(ts_hw_transfer_time_us(&p, TS_MEM_HBM, 8e9), 1000.5));
	/* zero bytes cost the latency alone */
	cr_expect(NEAR(ts_hw_transfer_time_us(&p, TS_MEM_STORAGE, 0), 80.0));
	/* decode: 116480 elements at 200e9 elements/s = 0.5824 us */
	cr_expect(NEAR(ts_hw_decode_time_us(&p, TS_CODEC_NVFP4, 116480), 0.5824));
	/* bad levels and sizes */
	cr_expect(isinf(ts_hw_transfer_time_us(&p, (ts_mem_level)9, 1)));
	cr_expect(isinf(ts_hw_transfer_time_us(&p, TS_MEM_RAM, -1)));
	cr_expect(isinf(ts_hw_decode_time_us(&p, (ts_codec)42, 1)));
	cr_expect_eq(ts_hw_bandwidth_gbps(&p, (ts_mem_level)-1), 0.0);
}

Test(hierarchy, an_absent_level_cannot_be_transferred_from)
{
	ts_hw_profile p;
	cr_assert_eq(ts_hw_profile_builtin(&p, "blackwell"), 0);
	p.level[TS_MEM_HBM] = (ts_mem_level_info){0, 0, 0, 0};
	cr_expect_eq(ts_hw_bandwidth_gbps(&p, TS_MEM_HBM), 0.0);
	cr_expect(isinf(ts_hw_transfer_time_us(&p, TS_MEM_HBM, 1024)));
}

Test(hierarchy, page_costs_follow_the_model)
{
	ts_hw_profile p;
	ts__page_cost c;
	cr_assert_eq(ts_hw_profile_builtin(&p, "blackwell"), 0);
	p.decode_geps[TS_CODEC_NVFP4] = 2.0;
	/* 116480 elements, 65536 stored bytes, 465920 decoded bytes (F32):
	 *   decode  116480 / 2e9 s            = 58.24 us
	 *   copy    0.1 + 465920 / 50e9 s     = 0.1 + 9.3184 = 9.4184 us
	 *   storage 80 + 65536 / 7e9 s + 58.24 = 80 + 9.362285714... + 58.24 us */
	ts__hw_page_cost(&p, TS_CODEC_NVFP4, 116480, 65536, 465920, &c);
	cr_expect(NEAR(c.compressed_us, 58.24));
	cr_expect(NEAR(c.decoded_us, 9.4184));
	cr_expect(NEAR(c.storage_us, 80.0 + 65536.0 / 7000.0 + 58.24));
	cr_expect_geq(c.storage_us, c.compressed_us);
}

Test(hierarchy, level_names_round_trip)
{
	for (int i = 0; i < TS_MEM_LEVEL_COUNT; i++) {
		ts_mem_level l;
		cr_expect_eq(ts_mem_level_parse(&l, ts_mem_level_name((ts_mem_level)i)), 0);
		cr_expect_eq((int)l, i);
	}
	ts_mem_level l;
	cr_expect_eq(ts_mem_level_parse(&l, "L2"), 0);
	cr_expect_eq(l, TS_MEM_L2);
	cr_expect_eq(ts_mem_level_parse(&l, "l3"), TS_EINVAL);
	cr_expect_str_eq(ts_mem_level_name((ts_mem_level)77), "?");
}

Test(hierarchy, profile_file_round_trips_exactly, .init = make_tmpdir, .fini = remove_tmpdir)
{
	ts_hw_profile p, q;
	char path[300];
	cr_assert_eq(ts_hw_profile_builtin(&p, "blackwell"), 0);
	snprintf(p.name, sizeof(p.name), "measured");
	p.level[TS_MEM_HBM] = (ts_mem_level_info){0, 0, 0, 0};
	p.level[TS_MEM_RAM].bandwidth_gbps = 1.0 / 3.0; /* not representable in decimal */
	p.level[TS_MEM_STORAGE].measured = 1;
	p.decode_geps[TS_CODEC_INT8] = 3.14159;
	p.io = TS_IO_PREAD;
	p.queue_depth = 4;
	p.calibrated_at = 1764230000;
	p.calibration_seconds = 2.5;
	snprintf(p.kernel, sizeof(p.kernel), "avx2");
	snprintf(path, sizeof(path), "%s/p", tmpdir);
	cr_assert_eq(ts_hw_profile_save(&p, path), 0, "%s", ts_error_last());
	memset(&q, 0x55, sizeof(q));
	cr_assert_eq(ts_hw_profile_load(&q, path), 0, "%s", ts_error_last());
	cr_expect_str_eq(q.name, "measured");
	cr_expect_str_eq(q.kernel, "avx2");
	cr_expect_eq(q.io, TS_IO_PREAD);
	cr_expect_eq(q.queue_depth, 4);
	cr_expect_eq(q.calibrated_at, 1764230000);
	cr_expect_eq(q.page_bytes, p.page_bytes);
	for (int i = 0; i < TS_MEM_LEVEL_COUNT; i++) {
		cr_expect_eq(q.level[i].capacity_bytes, p.level[i].capacity_bytes, "level %d", i);
		cr_expect_eq(q.level[i].bandwidth_gbps, p.level[i].bandwidth_gbps, "level %d", i);
		cr_expect_eq(q.level[i].latency_us, p.level[i].latency_us, "level %d", i);
		cr_expect_eq(q.level[i].measured, p.level[i].measured, "level %d", i);
	}
	for (int c = 0; c < TS_CODEC_COUNT; c++)
		cr_expect_eq(q.decode_geps[c], p.decode_geps[c], "codec %d", c);
}

static const char good_head[] = "tstore-profile 1\nname measured\npage_bytes 65520\n"
				"level registers 640 10000 0.001 0\n"
				"level l1 49152 100 0.001 1\n"
				"level l2 1048576 50 0.003 1\n"
				"level hbm 0 0 0 0\n"
				"level ram 1000000000 10 0.1 1\n";

Test(hierarchy, malformed_profile_files_are_rejected_with_the_line,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
	ts_hw_profile q;
	char path[300], text[2048];
	snprintf(path, sizeof(path), "%s/p", tmpdir);

	cr_expect_eq(ts_hw_profile_load(&q, path), TS_ENOTFOUND);

	/* a negative storage bandwidth */
	snprintf(text, sizeof(text), "%slevel storage 1000 -7 80 1\n", good_head);
	write_text(path, text);
	cr_expect_eq(ts_hw_profile_load(&q, path), TS_ECORRUPT);
	cr_expect(strstr(ts_error_last(), "line 9") != NULL, "%s", ts_error_last());

	/* a missing decode rate */
	snprintf(text, sizeof(text),
		 "%slevel storage 1000 7 80 1\ndecode raw 1\ndecode nvfp4 1\ndecode mxfp4 1\n"
		 "decode int8 1\n", good_head);
	write_text(path, text);
	cr_expect_eq(ts_hw_profile_load(&q, path), TS_ECORRUPT);
	cr_expect(strstr(ts_error_last(), "codec") != NULL, "%s", ts_error_last());

	/* the same, complete: accepted */
	snprintf(text, sizeof(text),
		 "%slevel storage 1000 7 80 1\ndecode raw 1\ndecode nvfp4 1\ndecode mxfp4 1\n"
		 "decode int8 1\ndecode fp8 2.5\nfuture_key 12\n", good_head);
	write_text(path, text);
	cr_expect_eq(ts_hw_profile_load(&q, path), 0, "%s", ts_error_last());
	cr_expect_eq(q.decode_geps[TS_CODEC_FP8], 2.5);
	cr_expect_eq(q.level[TS_MEM_HBM].capacity_bytes, 0);

	/* NaN, an absent level with figures, a zero decode rate, another format */
	snprintf(text, sizeof(text), "%slevel storage 1000 nan 80 1\n", good_head);
	write_text(path, text);
	cr_expect_eq(ts_hw_profile_load(&q, path), TS_ECORRUPT);
	write_text(path, "tstore-profile 1\nlevel hbm 0 5 0 0\n");
	cr_expect_eq(ts_hw_profile_load(&q, path), TS_ECORRUPT);
	write_text(path, "tstore-profile 1\ndecode nvfp4 0\n");
	cr_expect_eq(ts_hw_profile_load(&q, path), TS_ECORRUPT);
	write_text(path, "tstore-profile 2\n");
	cr_expect_eq(ts_hw_profile_load(&q, path), TS_EVERSION);
	write_text(path, "");
	cr_expect_eq(ts_hw_profile_load(&q, path), TS_ECORRUPT);
	write_text(path, "\x7f" "ELF garbage\n");
	cr_expect_eq(ts_hw_profile_load(&q, path), TS_ECORRUPT);
}

Test(hierarchy, profile_path_sits_next_to_the_store_unless_overridden)
{
	char out[64];
	unsetenv("TSTORE_PROFILE");
	cr_expect_eq(ts_hw_profile_path(out, sizeof(out), "/data/model.tst"), 0);
	cr_expect_str_eq(out, "/data/model.tst-profile");
	cr_expect_eq(ts_hw_profile_path(out, 10, "/data/model.tst"), TS_ESHORTBUF);
	setenv("TSTORE_PROFILE", "/etc/tstore.profile", 1);
	cr_expect_eq(ts_hw_profile_path(out, sizeof(out), "/data/model.tst"), 0);
	cr_expect_str_eq(out, "/etc/tstore.profile");
	unsetenv("TSTORE_PROFILE");
}

static void expect_sane(const ts_hw_profile *p, ts_io_backend io)
{
	cr_expect_str_eq(p->name, "measured");
	cr_expect_eq(p->io, io);
	cr_expect_gt(p->calibrated_at, 0);
	cr_expect_gt(p->calibration_seconds, 0);
	for (int i = TS_MEM_L1; i < TS_MEM_LEVEL_COUNT; i++) {
		if (i == TS_MEM_HBM)
			continue;
		const ts_mem_level_info *l = &p->level[i];
		cr_expect_eq(l->measured, 1, "level %s", ts_mem_level_name((ts_mem_level)i));
		/* lower bound 100 kB/s: page faults through a map on a loaded shared machine */
		cr_expect(isfinite(l->bandwidth_gbps) && l->bandwidth_gbps > 1e-4 &&
				  l->bandwidth_gbps < 10000,
			  "level %s bandwidth %g", ts_mem_level_name((ts_mem_level)i),
			  l->bandwidth_gbps);
		cr_expect(isfinite(l->latency_us) && l->latency_us > 0 && l->latency_us < 1e6,
			  "level %s latency %g", ts_mem_level_name((ts_mem_level)i), l->latency_us);
		cr_expect_gt(l->capacity_bytes, 0);
	}
	cr_expect_eq(p->level[TS_MEM_HBM].capacity_bytes, 0, "no GPU memory on this host");
	/* A random load from RAM is slower than one from L1; a page read from storage is slower
	 * than a cache-line load from RAM. */
	cr_expect_lt(p->level[TS_MEM_L1].latency_us, p->level[TS_MEM_RAM].latency_us);
	cr_expect_lt(p->level[TS_MEM_RAM].latency_us, p->level[TS_MEM_STORAGE].latency_us);
	for (int c = 0; c < TS_CODEC_COUNT; c++)
		cr_expect(isfinite(p->decode_geps[c]) && p->decode_geps[c] > 0.005 &&
				  p->decode_geps[c] < 1000,
			  "codec %d: %g G elements/s", c, p->decode_geps[c]);
}

Test(hierarchy, short_calibration_gives_sane_positive_figures, .init = make_tmpdir,
     .fini = remove_tmpdir, .timeout = 60)
{
	static const ts_io_backend backends[] = {TS_IO_URING, TS_IO_PREAD, TS_IO_MMAP};
	char store[300];
	snprintf(store, sizeof(store), "%s/model.tst", tmpdir); /* does not exist: scratch file */
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		ts_calibrate_opts o;
		ts_hw_profile p;
		ts_calibrate_opts_init(&o);
		o.seconds = 0.3;
		o.path = store;
		o.io = backends[i];
		cr_assert_eq(ts_hw_profile_measure(&p, &o), 0, "%s", ts_error_last());
		/* uring may be refused in a container: then the fallback is reported */
		expect_sane(&p, backends[i] == TS_IO_URING && p.io == TS_IO_PREAD ? TS_IO_PREAD
										  : backends[i]);
		cr_expect_eq(p.page_bytes, 65520);
	}
	/* nothing left behind */
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", tmpdir);
	cr_expect_eq(system(cmd), 0, "scratch files left in %s", tmpdir);
}

Test(hierarchy, calibration_rejects_absurd_options)
{
	ts_calibrate_opts o;
	ts_hw_profile p;
	ts_calibrate_opts_init(&o);
	o.page_bytes = 100;
	cr_expect_eq(ts_hw_profile_measure(&p, &o), TS_EINVAL);
	o.page_bytes = 0;
	o.seconds = 1e6;
	cr_expect_eq(ts_hw_profile_measure(&p, &o), TS_EINVAL);
}
