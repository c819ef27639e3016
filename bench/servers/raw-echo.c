/*
 * The load generator's ceiling: raw-echo-c PORT ACCEPT
 *
 * A single-threaded epoll server in C that answers the opening handshake with
 * a 101, then writes back every byte it reads, parsing nothing (the load
 * generator counts its own masked frames coming back, as with the raw Node
 * echo). It shows how much load bench/loadgen.c can generate on this machine:
 * no WebSocket server can be measured above it.
 *
 * It serves bench/loadgen.c only. That client always sends the same key, so
 * the 101 carries the Sec-WebSocket-Accept value given as ACCEPT (the runner
 * passes the one it gives the load generator to check) instead of one hashed
 * here. Listens on 127.0.0.1, prints "ready", exits on SIGINT or SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE 65536
#define MAX_HEAD 16384

struct conn {
  int fd;
  int upgraded;
  /* The request head so far (until the blank line). */
  char head[MAX_HEAD];
  size_t head_len;
  /* Bytes read but not yet written back (the peer is slow to read). */
  char *pending;
  size_t pending_len, pending_cap;
};

static int epfd;
static char response[512];
static size_t response_len;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static void drop(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->pending);
  free(c);
}

static void watch(struct conn *c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is pending; returns -1 when the connection is gone. */
static int flush_pending(struct conn *c) {
  size_t done = 0;
  while (done < c->pending_len) {
    ssize_t n = write(c->fd, c->pending + done, c->pending_len - done);
    if (n < 0) {
      if (errno == EAGAIN) break;
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)n;
  }
  memmove(c->pending, c->pending + done, c->pending_len - done);
  c->pending_len -= done;
  /* Read again only once everything read has been written back: memory stays bounded. */
  watch(c, c->pending_len > 0 ? EPOLLOUT : EPOLLIN);
  return 0;
}

static int queue(struct conn *c, const char *bytes, size_t len) {
  if (c->pending_len + len > c->pending_cap) {
    size_t cap = c->pending_cap ? c->pending_cap : READ_SIZE;
    while (cap < c->pending_len + len) cap *= 2;
    char *grown = realloc(c->pending, cap);
    if (grown == NULL) return -1;
    c->pending = grown;
    c->pending_cap = cap;
  }
  memcpy(c->pending + c->pending_len, bytes, len);
  c->pending_len += len;
  return 0;
}

/* Echo `len` bytes: straight back when the socket takes them, else queued. */
static int echo(struct conn *c, const char *bytes, size_t len) {
  size_t done = 0;
  while (c->pending_len == 0 && done < len) {
    ssize_t n = write(c->fd, bytes + done, len - done);
    if (n < 0) {
      if (errno == EAGAIN) break;
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)n;
  }
  if (done == len) return 0;
  if (queue(c, bytes + done, len - done) != 0) return -1;
  return flush_pending(c);
}

/* Collect the request head; answer it once whole and echo what followed it. */
static int handshake(struct conn *c, const char *bytes, size_t len) {
  size_t room = MAX_HEAD - c->head_len;
  size_t take = len < room ? len : room;
  memcpy(c->head + c->head_len, bytes, take);
  size_t before = c->head_len;
  c->head_len += take;
  char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
  if (end == NULL) return c->head_len < MAX_HEAD ? 0 : -1;
  size_t head_end = (size_t)(end - c->head) + 4;
  c->upgraded = 1;
  if (echo(c, response, response_len) != 0) return -1;
  size_t used = head_end - before;
  return len > used ? echo(c, bytes + used, len - used) : 0;
}

static int readable(struct conn *c) {
  static char buffer[READ_SIZE];
  for (;;) {
    ssize_t n = read(c->fd, buffer, sizeof buffer);
    if (n == 0) return -1;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : -1;
    }
    int result = c->upgraded ? echo(c, buffer, (size_t)n) : handshake(c, buffer, (size_t)n);
    if (result != 0) return -1;
    /* Stop reading while replies wait to be written; a partial read means the socket is empty. */
    if (c->pending_len > 0 || (size_t)n < sizeof buffer) return 0;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: raw-echo-c PORT ACCEPT\n");
    return 2;
  }
  int port = atoi(argv[1]);
  response_len = (size_t)snprintf(response, sizeof response,
                                  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: %s\r\n\r\n",
                                  argv[2]);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 511) != 0) {
    perror("raw-echo-c: listen");
    return 1;
  }
  epfd = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev);
  printf("ready\n");
  fflush(stdout);

  struct epoll_event events[256];
  while (!stopping) {
    int count = epoll_wait(epfd, events, 256, 200);
    for (int i = 0; i < count; i++) {
      struct conn *c = events[i].data.ptr;
      if (c == NULL) {
        int fd;
        while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *fresh = calloc(1, sizeof *fresh);
          if (fresh == NULL) {
            close(fd);
            continue;
          }
          fresh->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = fresh};
          epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      int gone = 0;
      if (events[i].events & EPOLLOUT) gone = flush_pending(c) != 0;
      if (!gone && (events[i].events & EPOLLIN)) gone = readable(c) != 0;
      if (!gone && (events[i].events & (EPOLLERR | EPOLLHUP)) && !(events[i].events & EPOLLIN)) gone = 1;
      if (gone) drop(c);
    }
  }
  return 0;
}
