/* status: `sysdig-forwarder status -c FILE [--json] [-t DURATION]` shows an operator, at a
 * terminal, where the forwarder stands: the state the daemon left on disk (checkpoint: watermark
 * and lag, window in progress; each sink's spool; the dead-letter file: count per sink and the
 * newest reasons), whether a daemon holds the checkpoint, and, when server.listen is set and the
 * daemon answers there, what it reports live (/readyz, /metrics: readiness, lag, last poll, per
 * sink up/queue/spool). Read only: it takes no lock, and creates, cuts or removes nothing.
 *
 * Healthy (exit 0) means nothing needs a person: the checkpoint is readable (or absent: never
 * ran), no spool holds events, the dead-letter file holds no entry, and, when a daemon is
 * running with its server on, /readyz answers 200 and every sink is up. Anything else is
 * unhealthy (exit 1), each reason listed. A stopped daemon is not unhealthy by itself. */
#ifndef SF_STATUS_H
#define SF_STATUS_H

/* argv[0] == "status". Returns the exit status: 0 healthy, 1 unhealthy (or not verifiable:
 * a file it cannot read, a running daemon whose server does not answer), 2 usage or
 * configuration error. */
int sf_status_main(int argc, char **argv);

#endif
