// Command release builds FlowForge's release artefacts without Docker or a
// kustomize binary: `release images` (make images) writes the container
// images under bin/images (package internal/images), `release manifests`
// (make manifests) renders one install.yaml per overlay of overlays/
// with the images by digest (package deploy/render), `release uninstall`
// (make uninstall) removes a rendered install from a cluster without
// wedging it (deploy.Uninstall).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/deploy/render"
	"github.com/flowforge/flowforge/internal/images"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: release images|manifests|uninstall [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "images":
		err = runImages(ctx, os.Args[2:])
	case "manifests":
		err = runManifests(os.Args[2:])
	case "uninstall":
		err = runUninstall(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (images, manifests or uninstall)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "release %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func runImages(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("images", flag.ExitOnError)
	o := images.Options{Logf: func(f string, a ...any) { fmt.Printf(f+"\n", a...) }}
	fs.StringVar(&o.Root, "root", ".", "the Go module's directory")
	fs.StringVar(&o.OutDir, "out", "bin/images", "output directory")
	fs.StringVar(&o.Repository, "repository", "ghcr.io/flowforge", "registry and path the images are named under")
	fs.StringVar(&o.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to include")
	fs.StringVar(&o.Meta.Source, "source", "https://github.com/flowforge/flowforge", "org.opencontainers.image.source")
	fs.StringVar(&o.Meta.Revision, "revision", "", "org.opencontainers.image.revision (the commit)")
	fs.StringVar(&o.Meta.Version, "version", "", "org.opencontainers.image.version and the tag of the tarballs")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "every timestamp in the images, in seconds since 1970 (the commit time)")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "platforms of the index")
	programs := fs.String("programs", "flowforge-webhook,flowforge-controller", "programs under cmd/ to build an image of")
	fs.StringVar(&o.LDFlags, "ldflags", "", "extra -ldflags")
	_ = fs.Parse(args)
	secs, err := strconv.ParseInt(strings.TrimSpace(*epoch), 10, 64)
	if err != nil {
		return fmt.Errorf("-source-date-epoch %q: %w", *epoch, err)
	}
	o.Meta.Created = time.Unix(secs, 0).UTC()
	if o.Platforms, err = images.ParsePlatforms(*platforms); err != nil {
		return err
	}
	for _, p := range strings.Split(*programs, ",") {
		o.Programs = append(o.Programs, images.Program{Name: p, Package: "./cmd/" + p})
	}
	_, err = images.Build(ctx, o)
	return err
}

func runManifests(args []string) error {
	fs := flag.NewFlagSet("manifests", flag.ExitOnError)
	var o render.Options
	fs.StringVar(&o.DeployDir, "deploy", "deploy", "the kustomize base")
	fs.StringVar(&o.OverlaysDir, "overlays", "overlays", "the overlays, one directory each")
	fs.StringVar(&o.OutDir, "out", "bin/manifests", "output directory: <overlay>/install.yaml")
	fs.StringVar(&o.ImagesDir, "images", "bin/images", "where `release images` wrote images.json (the digests)")
	_ = fs.Parse(args)
	written, err := render.All(o)
	for _, w := range written {
		fmt.Println(w)
	}
	return err
}

func runUninstall(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("uninstall", flag.ExitOnError)
	install := fs.String("f", "", "the rendered install to remove (bin/manifests/<overlay>/install.yaml)")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	policyData := fs.String("policy-data", "policies/data.yaml", "policy data naming the export finalizers")
	drain := fs.Duration("drain", 2*time.Minute, "how long the controller may go on exporting before the finalizers are released")
	_ = fs.Parse(args)
	data, err := os.ReadFile(*install)
	if err != nil {
		return err
	}
	objs, err := deploy.DecodeUnstructured(data)
	if err != nil {
		return err
	}
	pd, err := os.ReadFile(*policyData)
	if err != nil {
		return err
	}
	finalizers, err := deploy.ExportFinalizers(pd)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return deploy.Uninstall(ctx, dyn, mapper, objs, deploy.UninstallOptions{
		Finalizers: finalizers, Drain: *drain, Logf: func(f string, a ...any) { fmt.Printf(f+"\n", a...) },
	})
}
