/*
 * The native load generator: the same loads as loadgen.ts (echo, churn and
 * fanout kinds), written in C on epoll so that it needs far less CPU per message
 * and per connection than any server it measures. The runner (run.ts)
 * compiles it with the system C compiler into dist/bench/ and passes every
 * scenario parameter on the command line; without a compiler it falls back
 * to loadgen.ts.
 *
 *   loadgen-c --kind echo --port P --connections N --inflight N --size N
 *             --binary 0|1 [--raw] --accept ACCEPT
 *             [--warmup S] [--duration S] [--server-pid PID]
 *   loadgen-c --kind churn --port P --concurrency N --accept ACCEPT ...
 *   loadgen-c --kind fanout --port P --connections N --batch N --size N
 *             --binary 0|1 [--raw] --accept ACCEPT ...
 *             [--ports P1,P2,...] [--settle S] [--cpu-pids PID,PID,...]
 *
 * Fan-out across processes (bench/scale.ts): --ports spreads the connections
 * over several ports, connection i on port i mod n (the publisher,
 * connection 0, on P1); --settle waits S seconds between the last handshake
 * and the first publish (for subscriptions to reach a broker); --cpu-pids
 * (any kind) reports the CPU of each of those processes over the measured
 * window ("cpuByPid") and the whole machine's ("machineCpu"). With --ports,
 * a fan-out run also reports deliveries and the first and last delivery of
 * every round by port ("ports"), and ends by letting the last round
 * complete and checking that every connection received every message
 * published exactly once. Without these options nothing changes.
 *
 * ACCEPT is the Sec-WebSocket-Accept value for the fixed key below (the
 * runner computes it; no SHA-1 here). Prints one JSON line and exits: the
 * same fields as loadgen.ts prints, every figure under "metrics"; the runner
 * keeps those its scenario reports. An echo times every round trip and
 * reports their p50, p90, p99 and p999 in µs.
 *
 * What it sends and expects, byte for byte, matches wire.ts: the request
 * (with its session cookie), the fixed mask, the payload pattern, the close
 * frame. It speaks no TLS: the wss scenario is loadgen.ts's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
/* The session cookie of every upgrade request (AUTH_COOKIE in wire.ts): the churn-auth servers require it, the others ignore it. */
#define AUTH_COOKIE "session=bench"
#define HEAD_MAX 16384
#define READ_SIZE (256 * 1024)
#define SETUP_SECONDS 60.0
/* fanout: round times kept, one per round. */
#define MAX_SAMPLES (1 << 21)
/* fanout: a round (one publish reaching every connection) longer than this fails the run. */
#define ROUND_TIMEOUT_SECONDS 10.0
/* --ports and --cpu-pids: most entries. */
#define MAX_PORTS 16
#define MAX_PIDS 32
/* fanout with --ports: after the last round, how long to go on reading for a late duplicate. */
#define LINGER_SECONDS 0.3

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ------------------------------------------------------------ options */

static const char *kind = "";
static int port, connections = 1, inflight = 1, size = 32, binary, raw_echo, concurrency = 50, batch = 200;
static double warmup_s = 1, duration_s = 5;
static long server_pid = -1;
static const char *accept_value = "";
/* --ports: connection i of a fan-out goes to ports[i % port_count]; without it, one entry, --port. */
static int ports[MAX_PORTS], port_count, ports_given;
/* --cpu-pids */
static long cpu_pids[MAX_PIDS];
static int cpu_pid_count;
/* --settle: seconds between the last handshake and the first publish */
static double settle_s;

static void finish_fail(const char *fmt, ...) {
  char message[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  /* Messages are ours: no quotes or backslashes to escape. */
  printf("{\"ok\":false,\"error\":\"%s\"}\n", message);
  fflush(stdout);
  exit(1);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--raw") == 0) { raw_echo = 1; continue; }
    if (v == NULL) finish_fail("option %s needs a value", a);
    i++;
    if (strcmp(a, "--kind") == 0) kind = v;
    else if (strcmp(a, "--port") == 0) port = atoi(v);
    else if (strcmp(a, "--connections") == 0) connections = atoi(v);
    else if (strcmp(a, "--inflight") == 0) inflight = atoi(v);
    else if (strcmp(a, "--size") == 0) size = atoi(v);
    else if (strcmp(a, "--binary") == 0) binary = atoi(v);
    else if (strcmp(a, "--concurrency") == 0) concurrency = atoi(v);
    else if (strcmp(a, "--batch") == 0) batch = atoi(v);
    else if (strcmp(a, "--warmup") == 0) warmup_s = atof(v);
    else if (strcmp(a, "--duration") == 0) duration_s = atof(v);
    else if (strcmp(a, "--server-pid") == 0) server_pid = atol(v);
    else if (strcmp(a, "--accept") == 0) accept_value = v;
    else if (strcmp(a, "--settle") == 0) settle_s = atof(v);
    else if (strcmp(a, "--ports") == 0) {
      ports_given = 1;
      port_count = 0;
      for (const char *p = v; *p != '\0';) {
        if (port_count == MAX_PORTS) finish_fail("--ports takes at most %d ports", MAX_PORTS);
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n <= 0 || n > 65535) finish_fail("bad --ports %s", v);
        ports[port_count++] = (int)n;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') finish_fail("bad --ports %s", v);
      }
    } else if (strcmp(a, "--cpu-pids") == 0) {
      cpu_pid_count = 0;
      for (const char *p = v; *p != '\0';) {
        if (cpu_pid_count == MAX_PIDS) finish_fail("--cpu-pids takes at most %d PIDs", MAX_PIDS);
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n <= 0) finish_fail("bad --cpu-pids %s", v);
        cpu_pids[cpu_pid_count++] = n;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') finish_fail("bad --cpu-pids %s", v);
      }
    } else finish_fail("unknown option %s", a);
  }
  if (ports_given) {
    if (port_count == 0) finish_fail("--ports needs at least one port");
    if (port <= 0) port = ports[0];
    if (port != ports[0]) finish_fail("--port and the first of --ports differ");
  } else {
    ports[0] = port;
    port_count = 1;
  }
  if (port <= 0 || accept_value[0] == '\0') finish_fail("--port and --accept are required");
  if (settle_s < 0) finish_fail("bad --settle");
  if (connections < 1 || inflight < 1 || size < 0 || concurrency < 1 || batch < 1) finish_fail("bad scenario parameters");
}

/* ------------------------------------------------------------ clocks and CPU */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double self_cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

/* User + system time of a process in seconds, from /proc/PID/stat; -1 when unknown. */
static double process_cpu_s(long pid) {
  if (pid <= 0) return -1;
  char path[64], text[2048];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  /* Fields after the command name, which is in parentheses and may hold spaces. */
  char *p = strrchr(text, ')');
  if (p == NULL) return -1;
  unsigned long utime = 0, stime = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy (user + nice + system) and steal jiffies of the whole machine. */
static void machine_ticks(double *busy, double *steal) {
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, st = 0;
  FILE *f = fopen("/proc/stat", "r");
  if (f != NULL) {
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle, &iowait, &irq, &softirq, &st) < 3) user = 0;
    fclose(f);
  }
  *busy = (double)(user + nice + system);
  *steal = (double)st;
}

struct window {
  double t0, cpu0, server0, busy0, steal0;
  double pids0[MAX_PIDS];
  /* window_close: the same at the end of the window */
  int closed;
  double t1, cpu1, server1, busy1, steal1;
  double pids1[MAX_PIDS];
};

static void window_open(struct window *w) {
  w->closed = 0;
  w->t0 = now_s();
  w->cpu0 = self_cpu_s();
  w->server0 = process_cpu_s(server_pid);
  for (int i = 0; i < cpu_pid_count; i++) w->pids0[i] = process_cpu_s(cpu_pids[i]);
  machine_ticks(&w->busy0, &w->steal0);
}

/* The end of the window; window_print closes it itself when this was not called. */
static void window_close(struct window *w) {
  w->closed = 1;
  w->t1 = now_s();
  w->cpu1 = self_cpu_s();
  w->server1 = process_cpu_s(server_pid);
  for (int i = 0; i < cpu_pid_count; i++) w->pids1[i] = process_cpu_s(cpu_pids[i]);
  machine_ticks(&w->busy1, &w->steal1);
}

/* Prints the JSON fields common to every result: CPU shares over the window, as % of one core. */
static void window_print(struct window *w, double *seconds_out) {
  if (!w->closed) window_close(w);
  double seconds = w->t1 - w->t0;
  double loadgen = (w->cpu1 - w->cpu0) / seconds * 100;
  double server_now = w->server1;
  double busy = w->busy1, steal = w->steal1;
  double hz = (double)sysconf(_SC_CLK_TCK);
  double machine = (busy - w->busy0) / hz / seconds * 100;
  if (cpu_pid_count > 0) {
    /* Every process asked for, by PID (null: it was gone or unreadable), and the whole machine: % of one core. */
    printf("\"cpuByPid\":{");
    for (int i = 0; i < cpu_pid_count; i++) {
      printf("%s\"%ld\":", i == 0 ? "" : ",", cpu_pids[i]);
      if (w->pids0[i] >= 0 && w->pids1[i] >= 0) printf("%.2f", (w->pids1[i] - w->pids0[i]) / seconds * 100);
      else printf("null");
    }
    printf("},\"machineCpu\":%.2f,", machine);
  }
  printf("\"loadgenCpu\":%.2f,", loadgen);
  if (server_pid > 0 && server_now >= 0 && w->server0 >= 0) {
    double server = (server_now - w->server0) / seconds * 100;
    double other = machine - loadgen - server;
    printf("\"serverCpu\":%.2f,\"details\":{\"otherCpu\":%.2f,", server, other > 0 ? other : 0);
  } else {
    printf("\"serverCpu\":null,\"details\":{\"otherCpu\":\"unknown\",");
  }
  printf("\"stealCpu\":%.2f,\"loadgen\":\"c\"", (steal - w->steal0) / hz / seconds * 100);
  *seconds_out = seconds;
}

/* ------------------------------------------------------------ bytes on the wire (as wire.ts) */

static uint8_t *payload_bytes(int n, int is_binary) {
  uint8_t *bytes = malloc(n > 0 ? n : 1);
  uint32_t x = 0x9e3779b9u;
  for (int i = 0; i < n; i++) {
    x = x * 1664525u + 1013904223u;
    bytes[i] = is_binary ? (uint8_t)(x >> 24) : (uint8_t)(0x61 + (x >> 24) % 26);
  }
  return bytes;
}

/* A final frame; masked with MASK when `masked`. Returns its length. */
static size_t frame(uint8_t *out, int opcode, const uint8_t *data, size_t n, int masked) {
  size_t at = 0;
  out[at++] = (uint8_t)(0x80 | opcode);
  uint8_t mask_bit = masked ? 0x80 : 0;
  if (n < 126) {
    out[at++] = mask_bit | (uint8_t)n;
  } else if (n < 65536) {
    out[at++] = mask_bit | 126;
    out[at++] = (uint8_t)(n >> 8);
    out[at++] = (uint8_t)n;
  } else {
    out[at++] = mask_bit | 127;
    for (int shift = 56; shift >= 0; shift -= 8) out[at++] = (uint8_t)((uint64_t)n >> shift);
  }
  if (masked) {
    memcpy(out + at, MASK, 4);
    at += 4;
  }
  for (size_t i = 0; i < n; i++) out[at + i] = masked ? data[i] ^ MASK[i & 3] : data[i];
  return at + n;
}

/* The upgrade request of each port (its Host header names it): requests[i] for ports[i]. */
static char requests[MAX_PORTS][512];
static size_t request_lens[MAX_PORTS];

/* ------------------------------------------------------------ connections */

enum { CONNECTING, HEAD, OPEN, DONE };

struct conn {
  int fd;
  int state;
  /* index in ports[] of the port it connects to */
  int port_index;
  int want_out;
  char *head;
  size_t head_len;
  /* echo, fanout: bytes of a reply received beyond whole replies, bytes of the first reply checked */
  size_t partial, checked;
  /* fanout: whole messages received on this connection */
  uint64_t delivered;
  /* echo: bytes written so far and bytes owed (frames whose echo came back, not yet rewritten) */
  uint64_t sent_total, owed;
  /*
   * echo: when each of the `inflight` messages on the wire was handed to the
   * socket, oldest at ring_head. The server echoes in order, so the next whole
   * reply is the echo of the message at ring_head.
   */
  uint64_t *sent_ns;
  int ring_head;
  /* churn: the server's close frame has arrived */
  int got_close;
};

static int epfd;
static uint8_t *read_buffer;

static void watch(struct conn *c, int op, int out) {
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, op, c->fd, &ev) != 0) finish_fail("epoll_ctl: %s", strerror(errno));
  c->want_out = out;
}

/* Open `c` to ports[port_index]. */
static void open_conn_to(struct conn *c, int port_index) {
  memset(c, 0, sizeof *c);
  c->port_index = port_index;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) finish_fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[port_index])};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
    finish_fail("connect: %s", strerror(errno));
  }
  c->state = CONNECTING;
  watch(c, EPOLL_CTL_ADD, 1);
}

static void open_conn(struct conn *c) { open_conn_to(c, 0); }

static void close_conn(struct conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  free(c->head);
  c->head = NULL;
  c->state = DONE;
}

/* The socket connected: send the upgrade request. */
static void on_connected(struct conn *c) {
  int error = 0;
  socklen_t len = sizeof error;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0) finish_fail("connect: %s", strerror(error));
  size_t request_len = request_lens[c->port_index];
  if (write(c->fd, requests[c->port_index], request_len) != (ssize_t)request_len) finish_fail("the upgrade request did not go out in one write");
  c->state = HEAD;
  c->head = malloc(HEAD_MAX);
  watch(c, EPOLL_CTL_MOD, 0);
}

/* Case-insensitive search for `needle` (lower case) in `text`. */
static const char *find_lower(const char *text, size_t n, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++) {
    size_t k = 0;
    while (k < m && (text[i + k] | (text[i + k] >= 'A' && text[i + k] <= 'Z' ? 0x20 : 0)) == needle[k]) k++;
    if (k == m) return text + i;
  }
  return NULL;
}

/*
 * Bytes of the handshake response. Returns the offset in read_buffer where
 * frames start once the head is complete and valid, -1 while incomplete.
 */
static long on_head_bytes(struct conn *c, size_t n) {
  if (c->head_len + n > HEAD_MAX) finish_fail("handshake response head over 16 KiB");
  memcpy(c->head + c->head_len, read_buffer, n);
  size_t before = c->head_len;
  c->head_len += n;
  const char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
  if (end == NULL) return -1;
  size_t head_len = (size_t)(end - c->head) + 4;
  if (strncmp(c->head, "HTTP/1.1 101", 12) != 0 || (c->head[12] != ' ' && c->head[12] != '\r')) {
    finish_fail("handshake: not a 101");
  }
  const char *field = find_lower(c->head, head_len, "\r\nsec-websocket-accept:");
  if (field == NULL) finish_fail("handshake: missing Sec-WebSocket-Accept");
  field += strlen("\r\nsec-websocket-accept:");
  while (*field == ' ' || *field == '\t') field++;
  size_t accept_len = strlen(accept_value);
  if (strncmp(field, accept_value, accept_len) != 0 || (field[accept_len] != '\r' && field[accept_len] != ' ')) {
    finish_fail("handshake: wrong Sec-WebSocket-Accept");
  }
  free(c->head);
  c->head = NULL;
  c->state = OPEN;
  return (long)(head_len - before);
}

/* ------------------------------------------------------------ echo */

static uint8_t *burst, *expected;
static size_t frame_len, reply_len, burst_len;
static uint64_t received_bytes;
static int opened, started, recording, stopped;
/* fanout: round times in seconds */
static double *samples;
static long sample_count;

/*
 * Round-trip times of the echo, in ns: a log-linear histogram, so that every
 * round trip of a long run at millions of messages per second is counted in
 * fixed memory. Values below 2^RTT_SUB_BITS ns have a bucket each; above, every
 * power of two is split into RTT_HALF buckets, so a bucket is at most 1/512 of
 * its values wide and its midpoint within 0.1 % of any of them. The same
 * buckets as loadgen.ts.
 */
#define RTT_SUB_BITS 10
#define RTT_HALF (1 << (RTT_SUB_BITS - 1))
/* Up to 2^44 ns (4.9 hours); longer times count in the last bucket. */
#define RTT_MAX_BITS 44
#define RTT_BUCKETS ((RTT_MAX_BITS - RTT_SUB_BITS + 2) * RTT_HALF)

static uint64_t rtt_counts[RTT_BUCKETS];
static uint64_t rtt_count, rtt_min = UINT64_MAX, rtt_max;

static void rtt_record(uint64_t ns) {
  if (ns >= (UINT64_C(1) << RTT_MAX_BITS)) ns = (UINT64_C(1) << RTT_MAX_BITS) - 1;
  size_t bucket;
  if (ns < (1u << RTT_SUB_BITS)) {
    bucket = (size_t)ns;
  } else {
    int shift = 63 - __builtin_clzll(ns) - RTT_SUB_BITS + 1;
    bucket = (size_t)shift * RTT_HALF + (size_t)(ns >> shift);
  }
  rtt_counts[bucket]++;
  rtt_count++;
  if (ns < rtt_min) rtt_min = ns;
  if (ns > rtt_max) rtt_max = ns;
}

/* The round-trip time at quantile q (nearest rank), in µs: its bucket's midpoint, kept within the extremes. */
static double rtt_quantile(double q) {
  uint64_t rank = (uint64_t)(q * (double)rtt_count + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > rtt_count) rank = rtt_count;
  uint64_t seen = 0;
  size_t bucket = 0;
  while (bucket < RTT_BUCKETS - 1 && seen + rtt_counts[bucket] < rank) seen += rtt_counts[bucket++];
  double value;
  if (bucket < (1u << RTT_SUB_BITS)) {
    value = (double)bucket;
  } else {
    int shift = (int)(bucket / RTT_HALF) - 1;
    uint64_t low = (uint64_t)(bucket - (size_t)shift * RTT_HALF) << shift;
    value = (double)low + (double)((UINT64_C(1) << shift) - 1) / 2;
  }
  if (value < (double)rtt_min) value = (double)rtt_min;
  if (value > (double)rtt_max) value = (double)rtt_max;
  return value / 1e3;
}

/* Write what is owed, from the periodic frame stream; wait for EPOLLOUT when the kernel is full. */
static void flush_owed(struct conn *c) {
  while (c->owed > 0) {
    size_t offset = (size_t)(c->sent_total % frame_len);
    size_t len = burst_len - offset;
    if (len > c->owed) len = (size_t)c->owed;
    ssize_t w = write(c->fd, burst + offset, len);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      finish_fail("write: %s", strerror(errno));
    }
    c->sent_total += (uint64_t)w;
    c->owed -= (uint64_t)w;
  }
  int out = c->owed > 0;
  if (out != c->want_out) watch(c, EPOLL_CTL_MOD, out);
}

/*
 * Bytes of fixed-size frames arrived on `c`: the first frame is compared byte
 * for byte with `expected` (`what` names it in the failure), and the whole
 * frames completed by these bytes are counted. Returns how many.
 */
static size_t count_frames(struct conn *c, const uint8_t *bytes, size_t n, const char *what) {
  if (c->checked < reply_len) {
    size_t k = reply_len - c->checked < n ? reply_len - c->checked : n;
    if (memcmp(bytes, expected + c->checked, k) != 0) finish_fail("the first %s differs from the expected %zu-byte frame", what, reply_len);
    c->checked += k;
  }
  received_bytes += n;
  size_t total = c->partial + n;
  size_t frames = total / reply_len;
  c->partial = total - frames * reply_len;
  return frames;
}

static void on_echo_frames(struct conn *c, const uint8_t *bytes, size_t n) {
  size_t replies = count_frames(c, bytes, n, "reply");
  if (replies == 0 || stopped) return;
  if (replies > (size_t)inflight) finish_fail("%zu replies for %d messages in flight", replies, inflight);
  /* Each reply frees its message's slot for the message written in its place now. */
  uint64_t t = now_ns();
  for (size_t i = 0; i < replies; i++) {
    if (recording) rtt_record(t - c->sent_ns[c->ring_head]);
    c->sent_ns[c->ring_head] = t;
    if (++c->ring_head == inflight) c->ring_head = 0;
  }
  c->owed += (uint64_t)replies * frame_len;
  flush_owed(c);
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double quantile(double q) {
  long i = (long)(q * sample_count + 0.999999) - 1;
  if (i < 0) i = 0;
  if (i >= sample_count) i = sample_count - 1;
  return samples[i] * 1e6;
}

/* ------------------------------------------------------------ churn */

static uint8_t close_frame[16];
static size_t close_frame_len;
static uint64_t completed, resets;

/* Bytes after the handshake on a churn connection: the server's close frame. */
static void on_churn_frames(struct conn *c, const uint8_t *bytes, size_t n) {
  if (n == 0 || c->got_close) return;
  if ((bytes[0] & 0x0f) != 0x8) finish_fail("expected a close frame, got first byte 0x%02x", bytes[0]);
  c->got_close = 1;
}

static void churn_done(struct conn *c) {
  if (!c->got_close) finish_fail("the server closed TCP without a close frame");
  close_conn(c);
  completed++;
  if (!stopped) open_conn(c);
}

/* ------------------------------------------------------------ fanout */

/*
 * Every connection subscribes; subscribers[0] also publishes, one message at a
 * time: a round starts when the publish is written and ends when every
 * connection, subscribers[0] included, has received the server's frame.
 */
static struct conn *subscribers;
static int next_to_open;
static uint8_t *publish_frame;
static uint64_t rounds_published;
/* Connections still to receive the current round's message; 0 between rounds. */
static long round_left;
static double round_start;

/*
 * With --ports, by port: connections, deliveries in the window, and the
 * current round's connections still waiting; for every round of the window,
 * when the port's first and last connection got the message (seconds after
 * the publish).
 */
#define PORT_SAMPLES (1 << 18)
struct port_stats {
  long connections, left;
  uint64_t deliveries;
  double first, last;
  double *firsts, *lasts;
  long count;
};
static struct port_stats port_stats[MAX_PORTS];

static void publish(void) {
  round_start = now_s();
  rounds_published++;
  round_left = connections;
  if (ports_given) {
    for (int p = 0; p < port_count; p++) {
      port_stats[p].left = port_stats[p].connections;
      port_stats[p].first = -1;
    }
  }
  /* One small frame on a socket whose previous publish the server has read: one write, or a broken run. */
  if (write(subscribers[0].fd, publish_frame, frame_len) != (ssize_t)frame_len) finish_fail("the publish did not go out in one write");
}

static void on_fanout_frames(struct conn *c, const uint8_t *bytes, size_t n) {
  size_t messages = count_frames(c, bytes, n, "delivery");
  if (messages == 0) return;
  c->delivered += messages;
  if (c->delivered > rounds_published) {
    if (ports_given) {
      finish_fail("a connection received %llu messages for %llu published: a duplicate (connection %ld, port %d)",
                  (unsigned long long)c->delivered, (unsigned long long)rounds_published, (long)(c - subscribers),
                  ports[c->port_index]);
    }
    finish_fail("a connection received %llu messages for %llu published", (unsigned long long)c->delivered,
                (unsigned long long)rounds_published);
  }
  round_left -= (long)messages;
  if (ports_given) {
    /* One message per connection per round (the check above), so this connection is done with the round. */
    struct port_stats *ps = &port_stats[c->port_index];
    double t = now_s() - round_start;
    if (ps->first < 0) ps->first = t;
    if (recording) ps->deliveries += messages;
    if (--ps->left == 0) {
      ps->last = t;
      if (recording && ps->count < PORT_SAMPLES) {
        ps->firsts[ps->count] = ps->first;
        ps->lasts[ps->count++] = ps->last;
      }
    }
  }
  if (round_left > 0) return;
  double t = now_s();
  if (recording && sample_count < MAX_SAMPLES) samples[sample_count++] = t - round_start;
  if (!stopped) publish();
}

/* Connections that have not received the current round's message, by port: "port 9001: 12, port 9002: 4988". */
static void missing_by_port(char *out, size_t size) {
  long missing[MAX_PORTS] = {0};
  for (int i = 0; i < connections; i++) {
    if (subscribers[i].state == OPEN && subscribers[i].delivered < rounds_published) missing[subscribers[i].port_index]++;
  }
  size_t at = 0;
  out[0] = '\0';
  for (int p = 0; p < port_count && at < size; p++) {
    at += (size_t)snprintf(out + at, size - at, "%sport %d: %ld of %ld", p == 0 ? "" : ", ", ports[p], missing[p],
                           port_stats[p].connections);
  }
}

/* Open subscribers[i], on port i mod port_count (one port without --ports). */
static void open_subscriber(int i) {
  open_conn_to(&subscribers[i], i % port_count);
  port_stats[i % port_count].connections++;
}

/* A connection finished its handshake: open the next one, so that at most `batch` handshakes are in progress. */
static void on_fanout_open(void) {
  if (next_to_open < connections) open_subscriber(next_to_open++);
}

/* ------------------------------------------------------------ the loop */

enum { MODE_ECHO, MODE_CHURN, MODE_FANOUT };

static void on_readable(struct conn *c, int mode) {
  int is_churn = mode == MODE_CHURN;
  ssize_t n = read(c->fd, read_buffer, READ_SIZE);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    /* A server may reset instead of closing once the close frames crossed. */
    if (is_churn && c->got_close && errno == ECONNRESET) {
      resets++;
      churn_done(c);
      return;
    }
    finish_fail("read: %s", strerror(errno));
  }
  if (n == 0) {
    if (is_churn && c->state == OPEN) {
      churn_done(c);
      return;
    }
    finish_fail("the server closed a connection (%s the handshake)", c->state == OPEN ? "after" : "during");
  }
  size_t start = 0;
  if (c->state == HEAD) {
    long at = on_head_bytes(c, (size_t)n);
    if (at < 0) return;
    start = (size_t)at;
    if (is_churn) {
      if (write(c->fd, close_frame, close_frame_len) != (ssize_t)close_frame_len) finish_fail("the close frame did not go out in one write");
    } else {
      if (++opened == connections) started = 1;
      if (mode == MODE_FANOUT) on_fanout_open();
    }
  }
  if (start < (size_t)n) {
    if (is_churn) on_churn_frames(c, read_buffer + start, (size_t)n - start);
    else if (mode == MODE_FANOUT) on_fanout_frames(c, read_buffer + start, (size_t)n - start);
    else on_echo_frames(c, read_buffer + start, (size_t)n - start);
  }
}

static void dispatch(struct epoll_event *events, int count, int mode) {
  for (int i = 0; i < count; i++) {
    struct conn *c = events[i].data.ptr;
    if (c->state == DONE) continue;
    if (c->state == CONNECTING) {
      if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
      continue;
    }
    if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, mode);
    if (c->state == OPEN && mode == MODE_ECHO && (events[i].events & EPOLLOUT)) flush_owed(c);
  }
}

/* Run the loop until `until` (monotonic seconds). */
static void loop_until(double until, int mode, int stop_when_started) {
  static struct epoll_event events[1024];
  for (;;) {
    double t = now_s();
    double left = until - t;
    if (left <= 0) return;
    if (stop_when_started && started) return;
    if (mode == MODE_FANOUT && round_left > 0 && t - round_start > ROUND_TIMEOUT_SECONDS) {
      if (ports_given) {
        char where[256];
        missing_by_port(where, sizeof where);
        finish_fail("a round did not complete within %.0f s: %ld of %d connections did not get message %llu (missing by port: %s)",
                    ROUND_TIMEOUT_SECONDS, round_left, connections, (unsigned long long)rounds_published, where);
      }
      finish_fail("a round did not complete within %.0f s: %ld of %d connections did not get the message", ROUND_TIMEOUT_SECONDS,
                  round_left, connections);
    }
    int timeout = (int)(left * 1000) + 1;
    int count = epoll_wait(epfd, events, 1024, timeout > 50 ? 50 : timeout);
    if (count < 0) {
      if (errno == EINTR) continue;
      finish_fail("epoll_wait: %s", strerror(errno));
    }
    dispatch(events, count, mode);
  }
}

/*
 * Warm up for warmup_s, then measure for duration_s with samples recorded;
 * the load stops after. `w` spans the measured window; returns the bytes
 * received in it.
 */
static uint64_t warm_up_and_measure(int mode, struct window *w) {
  loop_until(now_s() + warmup_s, mode, 0);
  uint64_t bytes0 = received_bytes;
  window_open(w);
  recording = 1;
  loop_until(now_s() + duration_s, mode, 0);
  recording = 0;
  stopped = 1;
  return received_bytes - bytes0;
}

/*
 * The client's masked message frame (its length in frame_len), and the frame
 * every reply must be (`expected`, reply_len): the server's unmasked frame of
 * the same payload, or for a raw server, which moves bytes, the client's own.
 */
static uint8_t *message_frames(void) {
  int opcode = binary ? 2 : 1;
  uint8_t *body = payload_bytes(size, binary);
  uint8_t *client = malloc((size_t)size + 14);
  frame_len = frame(client, opcode, body, (size_t)size, 1);
  expected = malloc((size_t)size + 14);
  if (raw_echo) {
    memcpy(expected, client, frame_len);
    reply_len = frame_len;
  } else {
    reply_len = frame(expected, opcode, body, (size_t)size, 0);
  }
  free(body);
  return client;
}

static void run_echo(void) {
  uint8_t *client = message_frames();
  /* inflight + 1 frames: from any offset inside the first, `inflight` whole frames follow. */
  burst_len = frame_len * (size_t)(inflight + 1);
  burst = malloc(burst_len);
  for (int i = 0; i <= inflight; i++) memcpy(burst + frame_len * (size_t)i, client, frame_len);
  uint64_t *rings = calloc((size_t)connections * (size_t)inflight, sizeof *rings);

  struct conn *conns = calloc((size_t)connections, sizeof *conns);
  for (int i = 0; i < connections; i++) open_conn(&conns[i]);
  loop_until(now_s() + SETUP_SECONDS, MODE_ECHO, 1);
  if (!started) finish_fail("setup took longer than %.0f s", SETUP_SECONDS);
  for (int i = 0; i < connections; i++) {
    conns[i].sent_ns = rings + (size_t)i * (size_t)inflight;
    uint64_t t = now_ns();
    for (int k = 0; k < inflight; k++) conns[i].sent_ns[k] = t;
    conns[i].owed = (uint64_t)inflight * frame_len;
    flush_owed(&conns[i]);
  }
  struct window w;
  double messages = (double)warm_up_and_measure(MODE_ECHO, &w) / (double)reply_len;
  if (messages < 1) finish_fail("no echo in the measured window");

  printf("{\"ok\":true,");
  double seconds;
  window_print(&w, &seconds);
  printf(",\"messages\":%.0f,\"seconds\":%.4f,\"replyFrameBytes\":%zu},", messages, seconds, reply_len);
  printf("\"metrics\":{\"msgPerSec\":%.2f,\"mbPerSec\":%.3f", messages / seconds, messages * size / 1e6 / seconds);
  if (rtt_count > 0) {
    printf(",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"rttMax\":%.3f,\"samples\":%llu", rtt_quantile(0.5),
           rtt_quantile(0.9), rtt_quantile(0.99), rtt_quantile(0.999), (double)rtt_max / 1e3, (unsigned long long)rtt_count);
  }
  printf("}}\n");
  fflush(stdout);
  for (int i = 0; i < connections; i++) close_conn(&conns[i]);
}

static void run_churn(void) {
  uint8_t code[2] = {0x03, 0xe8};
  close_frame_len = frame(close_frame, 8, code, 2, 1);
  struct conn *conns = calloc((size_t)concurrency, sizeof *conns);
  for (int i = 0; i < concurrency; i++) open_conn(&conns[i]);
  loop_until(now_s() + warmup_s, MODE_CHURN, 0);
  uint64_t c0 = completed;
  struct window w;
  window_open(&w);
  loop_until(now_s() + duration_s, MODE_CHURN, 0);
  stopped = 1;
  uint64_t c1 = completed;
  if (c1 == c0) finish_fail("no handshake completed in the measured window");
  printf("{\"ok\":true,");
  double seconds;
  window_print(&w, &seconds);
  printf(",\"handshakes\":%llu,\"resets\":%llu,\"seconds\":%.4f},", (unsigned long long)(c1 - c0), (unsigned long long)resets, seconds);
  printf("\"metrics\":{\"handshakesPerSec\":%.2f}}\n", (double)(c1 - c0) / seconds);
  fflush(stdout);
  for (int i = 0; i < concurrency; i++) close_conn(&conns[i]);
}

static void run_fanout(void) {
  publish_frame = message_frames();
  samples = malloc(sizeof(double) * MAX_SAMPLES);

  subscribers = calloc((size_t)connections, sizeof *subscribers);
  for (int i = 0; i < connections; i++) subscribers[i].fd = -1;
  if (ports_given) {
    for (int p = 0; p < port_count; p++) {
      port_stats[p].firsts = malloc(sizeof(double) * PORT_SAMPLES);
      port_stats[p].lasts = malloc(sizeof(double) * PORT_SAMPLES);
    }
  }
  int first = batch < connections ? batch : connections;
  for (next_to_open = 0; next_to_open < first; next_to_open++) open_subscriber(next_to_open);
  double setup_start = now_s();
  loop_until(setup_start + SETUP_SECONDS, MODE_FANOUT, 1);
  if (!started) finish_fail("setup took longer than %.0f s: %d of %d connections open", SETUP_SECONDS, opened, connections);
  double opening_s = now_s() - setup_start;
  /* Nothing is published yet: anything that arrives while settling fails the run as a message nobody published. */
  if (settle_s > 0) loop_until(now_s() + settle_s, MODE_FANOUT, 0);
  publish();
  struct window w;
  double deliveries = (double)warm_up_and_measure(MODE_FANOUT, &w) / (double)reply_len;
  if (ports_given) window_close(&w);
  if (sample_count == 0) {
    if (ports_given) {
      char where[256];
      missing_by_port(where, sizeof where);
      finish_fail("no round completed in the measured window (message %llu has waited %.1f s: %ld of %d connections did not get it; missing by port: %s)",
                  (unsigned long long)rounds_published, now_s() - round_start, round_left, connections, where);
    }
    finish_fail("no round completed in the measured window (the last one has waited %.1f s: %ld of %d connections did not get the message)",
                now_s() - round_start, round_left, connections);
  }
  if (ports_given) {
    /*
     * Exactly once: let the round in progress complete (within the round
     * timeout), read on for LINGER_SECONDS in case a duplicate is late, and
     * require every connection's count to be the number published.
     */
    while (round_left > 0) loop_until(now_s() + 0.05, MODE_FANOUT, 0);
    loop_until(now_s() + LINGER_SECONDS, MODE_FANOUT, 0);
    long fewer = 0, more = 0;
    for (int i = 0; i < connections; i++) {
      if (subscribers[i].delivered < rounds_published) fewer++;
      if (subscribers[i].delivered > rounds_published) more++;
    }
    if (fewer > 0 || more > 0) {
      finish_fail("after the last round, %ld connections had fewer and %ld more messages than the %llu published", fewer, more,
                  (unsigned long long)rounds_published);
    }
  }

  printf("{\"ok\":true,");
  double seconds;
  window_print(&w, &seconds);
  printf(",\"deliveries\":%.0f,\"rounds\":%ld,\"connections\":%d,\"seconds\":%.4f,\"openingSeconds\":%.3f,\"replyFrameBytes\":%zu},",
         deliveries, sample_count, connections, seconds, opening_s, reply_len);
  qsort(samples, (size_t)sample_count, sizeof(double), compare_doubles);
  /* quantile() gives µs: fan-out times are reported in ms. */
  printf("\"metrics\":{\"deliveriesPerSec\":%.2f,\"fanoutP50\":%.4f,\"fanoutP90\":%.4f,\"fanoutP99\":%.4f,\"fanoutMax\":%.4f}",
         deliveries / seconds, quantile(0.5) / 1000, quantile(0.9) / 1000, quantile(0.99) / 1000, quantile(1.0) / 1000);
  if (ports_given) {
    /* By port, in ms after the publish: when its first and its last connection got the message (p50, p90, p99 over the window's rounds). */
    printf(",\"published\":%llu,\"ports\":[", (unsigned long long)rounds_published);
    for (int p = 0; p < port_count; p++) {
      struct port_stats *ps = &port_stats[p];
      printf("%s{\"port\":%d,\"connections\":%ld,\"deliveries\":%llu,\"rounds\":%ld", p == 0 ? "" : ",", ports[p], ps->connections,
             (unsigned long long)ps->deliveries, ps->count);
      if (ps->count > 0) {
        qsort(ps->firsts, (size_t)ps->count, sizeof(double), compare_doubles);
        qsort(ps->lasts, (size_t)ps->count, sizeof(double), compare_doubles);
        const double qs[3] = {0.5, 0.9, 0.99};
        const char *names[3] = {"P50", "P90", "P99"};
        for (int k = 0; k < 3; k++) {
          long i = (long)(qs[k] * ps->count + 0.999999) - 1;
          if (i < 0) i = 0;
          printf(",\"first%s\":%.4f,\"last%s\":%.4f", names[k], ps->firsts[i] * 1000, names[k], ps->lasts[i] * 1000);
        }
      }
      printf("}");
    }
    printf("]");
  }
  printf("}\n");
  fflush(stdout);
  for (int i = 0; i < connections; i++) close_conn(&subscribers[i]);
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  for (int p = 0; p < port_count; p++) {
    request_lens[p] = (size_t)snprintf(requests[p], sizeof requests[p],
                                       "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                       "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\nCookie: " AUTH_COOKIE "\r\n\r\n",
                                       ports[p]);
  }
  read_buffer = malloc(READ_SIZE);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) finish_fail("epoll_create1: %s", strerror(errno));
  if (strcmp(kind, "echo") == 0) run_echo();
  else if (strcmp(kind, "churn") == 0) run_churn();
  else if (strcmp(kind, "fanout") == 0) run_fanout();
  else finish_fail("--kind must be echo, churn or fanout");
  return 0;
}
