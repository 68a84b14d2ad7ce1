// Package localcluster starts and stops a real Kubernetes control plane for
// FlowForge's integration tests, demo and `make up`, with no Docker and no
// downloads: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// built from pinned Go modules (see tools/go.mod and `make tools`), plus kwok,
// which plays the kubelets of a small pool of simulated nodes.
//
// What a test gets is the real thing: TLS and RBAC on the API server, the
// usual admission plugins including PodSecurity, the Job and
// TTL-after-finished controllers, the scheduler, and pod logs served through
// the API server's pods/log endpoint from kwok's kubelet server.
//
// Job pods behave according to annotations on the pod template (see
// kwok/stages.yaml): they succeed after a run time, fail with an exit code,
// run until killed, stay in image-pull back-off, and print log lines that a
// client can follow while the pod runs. With Options.ResourceMetrics they
// also use the CPU and memory their annotations say, as kwok's kubelet
// resource metrics, which metrics-server (tools/metrics-server/go.mod)
// serves as metrics.k8s.io (metricsserver.go).
//
// Every component runs as a child process on free loopback ports, so two
// clusters can run side by side. Children die with the process that started
// them (Pdeathsig), and a small watchdog removes the temporary directory when
// that process is gone, so a failing or panicking test leaves nothing behind.
//
// Why not envtest: envtest starts only etcd and kube-apiserver. FlowForge's
// behaviour depends on the Job, TTL and garbage-collector controllers, the
// scheduler and pod logs, so the harness runs the whole control plane.
package localcluster
