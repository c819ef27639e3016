/**
 * The logger hook: resound says what happens to connections (opened,
 * refused, closed, timed out, dropped) as structured records, and is silent
 * unless given a logger. Records below the logger's level are never built.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One record: what happened (`event`), a sentence for people, and the fields that apply. */
export interface LogRecord {
  level: LogLevel;
  /** A stable name to filter on: 'open', 'close', 'refused', 'ping-timeout', 'idle-timeout', 'slow-reader', 'error', 'listening', 'reload'… */
  event: string;
  message: string;
  remoteAddress?: string;
  remotePort?: number;
  path?: string;
  /** An HTTP status (refused handshakes) or a close code. */
  status?: number;
  code?: number;
  reason?: string;
  subprotocol?: string | null;
  error?: Error;
  [field: string]: unknown;
}

/** Where records go. `level` (default 'info') is the least severe level wanted. */
export interface Logger {
  level?: LogLevel;
  log(record: LogRecord): void;
}

/** True when `logger` wants records of `level`: check before building one. */
export function wants(logger: Logger | undefined, level: LogLevel): logger is Logger {
  return logger !== undefined && RANK[level] >= RANK[logger.level ?? 'info'];
}

/** Hand `record` to `logger`; a logger that throws is reported on stderr and never breaks a connection. */
export function emit(logger: Logger, record: LogRecord): void {
  try {
    logger.log(record);
  } catch (error) {
    console.error('resound: the logger threw:', error);
  }
}

/** Build and emit a record only when the logger wants its level. */
export function logEvent(logger: Logger | undefined, level: LogLevel, event: string, message: string, fields?: Partial<LogRecord>): void {
  if (!wants(logger, level)) return;
  emit(logger, { ...fields, level, event, message });
}

/** The fields after `message` as `key=value`, strings quoted when they hold spaces or quotes. */
function formatFields(record: LogRecord): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (key === 'level' || key === 'event' || key === 'message' || value === undefined) continue;
    const text = value instanceof Error ? value.message : typeof value === 'string' ? value : JSON.stringify(value);
    parts.push(`${key}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`);
  }
  return parts.join(' ');
}

/**
 * A logger that writes one line per record: ISO time, level, event, message,
 * then `key=value` fields. `write` defaults to stderr.
 */
export function lineLogger(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Logger {
  return {
    level,
    log(record) {
      const fields = formatFields(record);
      write(`${new Date().toISOString()} ${record.level.toUpperCase()} ${record.event}: ${record.message}${fields ? ` ${fields}` : ''}`);
    },
  };
}

/** A logger that hands each record to `write` as one JSON line (for log shippers). */
export function jsonLogger(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Logger {
  return {
    level,
    log(record) {
      const { error, ...rest } = record;
      write(JSON.stringify({ time: new Date().toISOString(), ...rest, ...(error ? { error: error.message } : {}) }));
    },
  };
}
