package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/peapod/peapod/image"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/util/duration"
)

func newImageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "image",
		Short:   "Manage the local image store",
		Example: "  sudo peapod image import busybox.tar --name busybox:latest\n  sudo peapod image ls",
	}
	var name string
	var changes []string
	imp := &cobra.Command{
		Use:     "import FILE|- [--name REF] [--change INSTRUCTION]...",
		Short:   "Import a rootfs tar, a docker save archive or an OCI image layout (tar or directory)",
		Example: "  sudo peapod image import busybox.tar --name busybox:latest --change 'CMD [\"sh\"]'\n  docker save app | sudo peapod image import -",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeImageImport(g, args[0], name, changes, cmd.OutOrStdout())
		},
	}
	imp.Flags().StringVar(&name, "name", "", "image reference to tag it with (required for a plain rootfs tar)")
	imp.Flags().StringArrayVarP(&changes, "change", "c", nil,
		"Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER) for the config of a plain rootfs tar, as docker import --change")
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List images",
		Example: "  sudo peapod image ls",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return executeImageLs(g, cmd.OutOrStdout())
		},
	}
	rm := &cobra.Command{
		Use:     "rm IMAGE...",
		Short:   "Remove images (refused while a pod uses them)",
		Example: "  sudo peapod image rm busybox:latest",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeImageRm(g, args, cmd.OutOrStdout())
		},
	}
	inspect := &cobra.Command{
		Use:     "inspect IMAGE...",
		Short:   "Print images' config and manifest as JSON",
		Example: "  sudo peapod image inspect busybox:latest",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeImageInspect(g, args, cmd.OutOrStdout())
		},
	}
	prune := &cobra.Command{
		Use:     "prune",
		Short:   "Remove the images no pod uses, and the layers no image uses",
		Example: "  sudo peapod image prune",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return executeImagePrune(g, cmd.OutOrStdout())
		},
	}
	cmd.AddCommand(imp, newImagePullCommand(g), ls, inspect, rm, prune)
	return cmd
}

func executeImageImport(g *globals, file, name string, changes []string, out io.Writer) error {
	// Refuse a bad --change before opening the store or reading the file.
	if err := image.ParseChanges(changes); err != nil {
		return fmt.Errorf("--change: %w", err)
	}
	store, err := imageStore(g)
	if err != nil {
		return err
	}
	var img *image.Image
	opt := image.WithChanges(changes...)
	if file == "-" {
		if img, err = store.Import(os.Stdin, name, opt); err != nil {
			return fmt.Errorf("failed to import image from standard input: %w", err)
		}
	} else if img, err = store.ImportPath(file, name, opt); err != nil {
		return fmt.Errorf("failed to import image %q: %w", file, err)
	}
	fmt.Fprintf(out, "imported %s %s\n", img.ID, strings.Join(img.Names, " "))
	return nil
}

// imageStore opens the root's image store.
func imageStore(g *globals) (*image.Store, error) {
	m, err := g.manager()
	if err != nil {
		return nil, err
	}
	return m.Images()
}

func executeImageLs(g *globals, out io.Writer) error {
	store, err := imageStore(g)
	if err != nil {
		return err
	}
	imgs, err := store.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tSIZE\tCREATED")
	now := time.Now()
	for _, i := range imgs {
		id := shortHex(i.ID)
		digest := "<none>"
		if i.Digest != "" {
			digest = shortHex(i.Digest)
		}
		created := "-"
		if !i.Created.IsZero() {
			created = duration.HumanDuration(now.Sub(i.Created)) + " ago"
		}
		names := i.Names
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			repo, tag := splitName(n)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", repo, tag, digest, id, humanSize(i.Size), created)
		}
	}
	return tw.Flush()
}

// splitName splits a stored name into repository and tag, as crictl shows
// them; a name by digest has tag <none>, and no name is <none> <none>.
func splitName(n string) (repo, tag string) {
	if n == "" {
		return "<none>", "<none>"
	}
	if r, _, ok := strings.Cut(n, "@"); ok {
		return r, "<none>"
	}
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		return n[:i], n[i+1:]
	}
	return n, "<none>"
}

// shortHex is the first 12 hex digits of a sha256 digest.
func shortHex(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	return h[:min(12, len(h))]
}

// humanSize prints bytes as crictl does (decimal units).
func humanSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.3gGB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.3gMB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.3gkB", float64(n)/1e3)
	}
	return fmt.Sprintf("%dB", n)
}

// imageInspect is what image inspect prints.
type imageInspect struct {
	ID          string          `json:"id"`
	Names       []string        `json:"names"`
	Digest      string          `json:"digest,omitempty"`
	RepoDigests []string        `json:"repoDigests,omitempty"`
	Size        int64           `json:"size"`
	Created     time.Time       `json:"created"`
	Layers      []string        `json:"layers"` // diffIDs, bottom first
	Manifest    json.RawMessage `json:"manifest,omitempty"`
	Config      json.RawMessage `json:"config"`
}

func executeImageInspect(g *globals, refs []string, out io.Writer) error {
	store, err := imageStore(g)
	if err != nil {
		return err
	}
	var all []imageInspect
	for _, ref := range refs {
		img, err := store.Get(ref)
		if err != nil {
			return err
		}
		cfg := img.ConfigJSON
		if cfg == nil {
			// Imported before configs were kept: the parts the store knows.
			if cfg, err = json.Marshal(img.Config); err != nil {
				return fmt.Errorf("failed to encode config of image %s: %w", img.ID, err)
			}
		}
		ii := imageInspect{ID: img.ID, Names: img.Names, Digest: img.Digest, RepoDigests: img.RepoDigests,
			Size: img.Size, Created: img.Created, Manifest: img.Manifest, Config: cfg}
		for _, l := range img.Layers {
			ii.Layers = append(ii.Layers, l.DiffID)
		}
		all = append(all, ii)
	}
	data, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode images: %w", err)
	}
	_, err = fmt.Fprintf(out, "%s\n", data)
	return err
}

func executeImagePrune(g *globals, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	store, err := m.Images()
	if err != nil {
		return err
	}
	removed, err := store.Prune(m.PodsUsingImage)
	for _, id := range removed {
		fmt.Fprintf(out, "image %s removed\n", id)
	}
	return err
}

func executeImageRm(g *globals, refs []string, out io.Writer) error {
	m, err := g.manager()
	if err != nil {
		return err
	}
	store, err := m.Images()
	if err != nil {
		return err
	}
	var errs []error
	for _, ref := range refs {
		if err := store.Remove(ref, m.PodsUsingImage); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "image %s removed\n", ref)
	}
	return errors.Join(errs...)
}

// pullFlags are image pull's flags (run takes the registry ones too).
type pullFlags struct {
	platform       string   // os/arch[/variant]; "" is this machine's
	quiet          bool     // no progress
	creds          string   // USER:PASSWORD for the registry
	insecure       []string // registries that may be reached over plain HTTP
	registryConfig string   // the registries.toml; "" is the default
	authfile       string   // the auth.json; "" is image.DefaultAuthFile
}

func newImagePullCommand(g *globals) *cobra.Command {
	var f pullFlags
	c := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from a registry into the local store",
		Long: "Pull an image (docker.io/library/... for a short name) into the local store. Mirrors, CAs, client\n" +
			"certificates and insecure registries come from the registry config (" + image.DefaultRegistryConfig + ",\n" +
			"and certs.d/HOST:PORT/ beside it); credentials from --creds, the auth file peapod login writes, or\n" +
			"Docker's config.json. A tag pulled before is checked with a HEAD first: an unchanged one fetches nothing.",
		Example: "  sudo peapod image pull busybox:1.36\n" +
			"  sudo peapod image pull registry.local:5000/app@sha256:... --platform linux/arm64",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return executeImagePull(cmd.Context(), g, args[0], f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&f.platform, "platform", "", "os/arch[/variant] to pick from a multi-platform image (default: this machine's)")
	c.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "no progress; print only the image ID")
	f.addRegistryFlags(c.Flags())
	return c
}

// addRegistryFlags adds the flags pull and run share.
func (f *pullFlags) addRegistryFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.creds, "creds", "", "USER:PASSWORD for the registry (default: the auth file, then Docker's config.json)")
	fs.StringSliceVar(&f.insecure, "insecure-registry", nil, "HOST[:PORT] of a registry that may be reached over plain HTTP (loopback always may)")
	f.addConfigFlags(fs)
}

// addConfigFlags adds the flags that locate the registry config and the
// auth file (login and logout take them too).
func (f *pullFlags) addConfigFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.registryConfig, "registry-config", "", "registry config file: mirrors, TLS, insecure registries (default "+image.DefaultRegistryConfig+")")
	fs.StringVar(&f.authfile, "authfile", "", "auth file of registry credentials (default $REGISTRY_AUTH_FILE, else /run/containers/<uid>/auth.json)")
}

// options turns the flags into pull options.
func (f *pullFlags) options() (image.PullOptions, error) {
	opts := image.PullOptions{Insecure: f.insecure}
	if f.platform != "" {
		p, err := image.ParsePlatform(f.platform)
		if err != nil {
			return opts, fmt.Errorf("--platform: %w", err)
		}
		opts.Platform = p
	}
	if f.creds != "" {
		user, pass, ok := strings.Cut(f.creds, ":")
		if !ok || user == "" {
			return opts, errors.New("--creds: want USER:PASSWORD")
		}
		opts.Auth = &authn.Basic{Username: user, Password: pass}
	}
	if f.authfile != "" {
		opts.Keychain = authn.NewMultiKeychain(image.AuthFileKeychain(f.authfile), authn.DefaultKeychain)
	}
	cfgPath, missingOK := f.registryConfig, false
	if cfgPath == "" {
		cfgPath, missingOK = image.DefaultRegistryConfig, true
	}
	cfg, err := image.LoadRegistryConfig(cfgPath, missingOK)
	if err != nil {
		return opts, err
	}
	opts.Registries = cfg
	return opts, nil
}

// withProgress shows a pull's progress on w: bars on a terminal, one line
// per finished layer otherwise. The returned func ends the bars.
func withProgress(opts *image.PullOptions, w io.Writer) func() {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bars := image.NewTerminalBars(w)
		opts.Bars, opts.Progress = bars, bars
		return bars.Wait
	}
	opts.Progress = w
	return func() {}
}

func executeImagePull(ctx context.Context, g *globals, ref string, f pullFlags, out, errw io.Writer) error {
	store, err := imageStore(g)
	if err != nil {
		return err
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	done := func() {}
	if !f.quiet {
		done = withProgress(&opts, errw)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Ctrl-C stops the downloads; the staging dirs go, nothing half-pulled stays.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	img, err := store.Pull(ctx, ref, opts)
	done()
	if err != nil {
		return err
	}
	if f.quiet {
		fmt.Fprintln(out, img.ID)
		return nil
	}
	fmt.Fprintf(out, "pulled %s %s (image %s)\n", ref, img.Digest, img.ID)
	return nil
}
