/*
 * Progress reporting on stderr. See tools/cli/progress.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/cli/progress.h"

double progress_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *progress_size(char *buf, size_t size, double bytes)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	int u = 0;
	while (bytes >= 1000.0 && u < 5) {
		bytes /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%.0f B", bytes);
	else
		snprintf(buf, size, "%.*f %s", bytes < 10 ? 2 : bytes < 100 ? 1 : 0, bytes, units[u]);
	return buf;
}

/* TSTORE_PROGRESS_SECONDS (cli_env_read) overrides the plain-line interval (0: a line at every
 * update). */
static double plain_seconds(void)
{
	return cli_progress_seconds >= 0 ? cli_progress_seconds : PROGRESS_PLAIN_SECONDS;
}

void progress_begin(progress *p, const char *label, uint64_t total, int bytes, int quiet)
{
	memset(p, 0, sizeof *p);
	p->every = plain_seconds();
	p->label = label;
	p->total = total;
	p->bytes = bytes;
	p->quiet = quiet;
	p->tty = isatty(STDERR_FILENO);
	p->t0 = p->last = progress_now();
}

static void fmt_amount(const progress *p, char *buf, size_t size, double v)
{
	if (p->bytes)
		progress_size(buf, size, v);
	else
		snprintf(buf, size, "%.0f", v);
}

static void fmt_eta(char *buf, size_t size, double s)
{
	if (s < 0 || s > 360000)
		snprintf(buf, size, "--:--");
	else if (s >= 3600)
		snprintf(buf, size, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
	else
		snprintf(buf, size, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void draw(progress *p, double now, const char *what, int final)
{
	double el = now - p->t0;
	double rate = el > 0 ? (double)p->done / el : 0;
	double frac = p->total ? (double)p->done / (double)p->total : 1.0;
	char d[32], t[32], r[32], eta[32];
	fmt_amount(p, d, sizeof d, (double)p->done);
	fmt_amount(p, t, sizeof t, (double)p->total);
	fmt_amount(p, r, sizeof r, rate);
	fmt_eta(eta, sizeof eta, rate > 0 ? (double)(p->total - p->done) / rate : -1);
	if (frac > 1)
		frac = 1;
	if (p->tty) {
		char bar[31];
		int fill = (int)(frac * 30);
		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[30] = '\0';
		fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s/%s %s/s ETA %s %.40s", p->label, bar,
			frac * 100, d, t, r, eta, what && !final ? what : "");
		p->drawn = 1;
	} else {
		fprintf(stderr, "%s: %3.0f%% %s/%s %s/s%s%s%s\n", p->label, frac * 100, d, t, r,
			final ? "" : " ETA ", final ? "" : eta, final ? ", done" : "");
	}
	fflush(stderr);
}

void progress_add(progress *p, uint64_t n, const char *what)
{
	p->done += n;
	if (p->quiet)
		return;
	double now = progress_now();
	double every = p->tty ? 0.1 : p->every;
	if (now - p->last < every)
		return;
	p->last = now;
	draw(p, now, what, 0);
}

void progress_clear(progress *p)
{
	if (!p->quiet && p->tty && p->drawn) {
		fputs("\r\033[K", stderr);
		p->drawn = 0;
	}
}

void progress_end(progress *p)
{
	if (p->quiet)
		return;
	double now = progress_now();
	/* Short work needs no progress at all in logs. */
	if (!p->tty && now - p->t0 < p->every)
		return;
	draw(p, now, NULL, 1);
	if (p->tty)
		fputc('\n', stderr);
	p->drawn = 0;
}
