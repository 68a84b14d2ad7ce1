// Command flowforge-webhook serves FlowForge's mutating and validating
// admission webhooks. See webhook/server.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/webhook/server"
)

func main() {
	opts := server.Options{Certs: certs.DefaultConfig()}
	opts.Certs.BindFlags(flag.CommandLine)
	flag.StringVar(&opts.Host, "host", "", "address the admission endpoint listens on (empty: all)")
	flag.IntVar(&opts.Port, "port", 9443, "port of the admission endpoint (TLS)")
	flag.BoolVar(&opts.ReusePort, "reuse-port", false, "bind the admission endpoint with SO_REUSEPORT, so that several replicas share one address and the kernel spreads connections over them (the local cluster runs two replicas this way)")
	flag.DurationVar(&opts.DrainDelay, "drain-delay", server.DefaultDrainDelay, "on SIGTERM, how long the replica keeps serving admissions with /readyz failing, so that endpoint changes reach every node before it stops; then it shuts down gracefully (0: at once)")
	flag.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "after the drain delay, how long the admissions in flight may take to finish before the replica exits anyway")
	flag.StringVar(&opts.CertDir, "cert-dir", "/etc/flowforge/tls", "with --cert-mode=files: directory holding the serving certificate and key; changes are picked up without a restart")
	flag.StringVar(&opts.CertName, "cert-name", "tls.crt", "serving certificate file name in --cert-dir")
	flag.StringVar(&opts.KeyName, "key-name", "tls.key", "serving key file name in --cert-dir")
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "address of /metrics (\"0\" disables it)")
	flag.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.StringVar(&opts.PolicyDir, "policy-dir", "", "serve the policies in this directory (e.g. a mounted ConfigMap) instead of the embedded ones; edits are hot-reloaded")
	flag.BoolVar(&opts.Profiling, "enable-profiling", false, "serve net/http/pprof on the health probe address")
	flag.StringVar(&opts.ClaimNamespace, "claim-namespace", "flowforge-system", "namespace of the controller's records of exported Jobs' job-ids")
	flag.Int64Var(&opts.InFlightBytes, "max-in-flight-bytes", 0, "request bytes served at once, across every webhook path (a request counts for its body, at least 64 KiB): the memory an admission costs grows with its object (0: 4 MiB, 8 objects at the default limits)")
	flag.DurationVar(&opts.InFlightWait, "in-flight-wait", 0, "how long a request waits for room in --max-in-flight-bytes before it is refused with HTTP 429, a failed call that failurePolicy Fail turns into a refusal (0: 2s; negative: refuse at once)")
	gcPercent := flag.Int("gc-percent", 400, "Go GC target percentage, unless $GOGC is set: the live heap is small (a few MiB) and every admission allocates, so the default of 100 spends much of the CPU on GC")
	memoryLimitPercent := flag.Int("memory-limit-percent", 80, "when $GOMEMLIMIT is set (deploy/ sets it to the container's memory limit), keep the Go runtime's memory under this percentage of it: the process's RSS also holds what the runtime does not count (the binary's pages, freed memory not yet returned), and the GC target of --gc-percent lets the heap grow to the limit under load (docs/operations.md)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	if opts.DrainDelay == 0 {
		opts.DrainDelay = -1 // server.Options: negative is none, 0 the default
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" && *memoryLimitPercent > 0 && *memoryLimitPercent < 100 {
		debug.SetMemoryLimit(debug.SetMemoryLimit(-1) / 100 * int64(*memoryLimitPercent))
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "flowforge-webhook: %v\n", err)
		os.Exit(1)
	}
	if err := server.Run(ctrl.SetupSignalHandler(), cfg, opts, log); err != nil {
		log.Error(err, "Webhook server failed")
		os.Exit(1)
	}
}
