// Command mailflow is the one binary of the project: `conformance` runs the clause
// suites against a target and prints the per-clause report, `conformance report`
// compares saved reports, `serve` starts a scenario's world in-process, and `server`
// runs one server of it (one per container), `bench` measures the Edge's queue.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: mailflow <command> [flags]

commands:
  conformance [--target T] [--label-filter EXPR] [--report-dir DIR] [--strict] [-v]
                            run the clause suites and print the per-clause report
  conformance --target smtp://HOST[:PORT] --scenario FILE --listen ADDR[,ADDR...]|PREFIX
                            the same against an MTA you run, configured for FILE:
                            prints the settings it needs first (--print-settings: only them)
  conformance report FILE.json...
                            print a clause x target matrix of saved reports
  serve SCENARIO [--json]   start the scenario's world in-process until SIGINT/SIGTERM
  repro SCENARIO [--json] [--svg FILE]
                            start the world, send the scenario's messages, print each
                            one's path, routing decisions and trace; check expect:
  server --scenario FILE --server NAME [--dns ip:port] [--ldap URL] [--hub ip:port]...
                            run one server of a scenario (what each container runs);
                            trace events and readiness as JSON lines on stdout
  queue --spool DIR [--count]
                            list the messages a server's spool holds
  bench [--sizes B,B] [--clients N,N] [--messages N] [--queued N] [--postfix ip:port]
                            measure the Edge's queue as its own process (and a Postfix
                            relaying to the same sink): msg/s, 250-to-sink latency, RSS
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "conformance":
		if len(os.Args) > 2 && os.Args[2] == "report" {
			code = runMatrix(os.Args[3:])
		} else {
			code = runConformance(os.Args[2:])
		}
	case "serve":
		code = runServe(os.Args[2:])
	case "repro":
		code = runRepro(os.Args[2:])
	case "server":
		code = runServer(os.Args[2:])
	case "queue":
		code = runQueue(os.Args[2:])
	case "bench":
		code = runBench(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "mailflow: unknown command %q\n%s", os.Args[1], usage)
		code = 2
	}
	os.Exit(code)
}
