package manifest

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// systemdResolvConf lists the real upstream servers on hosts whose
// /etc/resolv.conf points at systemd-resolved's stub (127.0.0.53), which a
// pod in its own network namespace cannot reach.
const systemdResolvConf = "/run/systemd/resolve/resolv.conf"

// hostFiles are the host files EtcFiles reads; tests inject them.
type hostFiles struct {
	// resolv is the host's resolv.conf.
	resolv []byte
	// readUpstream reads systemdResolvConf.
	readUpstream func() ([]byte, error)
	// hosts is the host's /etc/hosts (for host-network pods).
	hosts func() ([]byte, error)
	// hostname is the host's name (for host-network pods).
	hostname func() (string, error)
}

// EtcFiles returns the contents of the pod's /etc/hostname, /etc/hosts
// (localhost lines, pod IP -> hostname, hostAliases) and /etc/resolv.conf
// (the host's, with systemd-resolved's stub replaced by its upstream file,
// then dnsPolicy and dnsConfig applied). hostResolv is the host's
// resolv.conf.
func EtcFiles(pod *corev1.Pod, ip string, hostResolv []byte) (hostname, hosts, resolv []byte, err error) {
	return etcFiles(pod, ip, hostFiles{
		resolv:       hostResolv,
		readUpstream: func() ([]byte, error) { return os.ReadFile(systemdResolvConf) },
		hosts:        func() ([]byte, error) { return os.ReadFile("/etc/hosts") },
		hostname:     os.Hostname,
	})
}

// etcFiles is EtcFiles with every host input injectable.
func etcFiles(pod *corev1.Pod, ip string, h hostFiles) (hostname, hosts, resolv []byte, err error) {
	name := Hostname(pod)
	if pod.Spec.HostNetwork {
		if name, err = h.hostname(); err != nil {
			return nil, nil, nil, fmt.Errorf("failed to read the host name: %w", err)
		}
	}
	hosts, err = hostsFile(pod, ip, name, h)
	if err != nil {
		return nil, nil, nil, err
	}
	resolv, err = resolvConf(pod, h)
	if err != nil {
		return nil, nil, nil, err
	}
	return []byte(name + "\n"), hosts, resolv, nil
}

// hostsFile builds /etc/hosts as the kubelet does: a managed file for pod
// networking; the host's own file for a host-network pod. hostAliases are
// appended to either.
func hostsFile(pod *corev1.Pod, ip, name string, h hostFiles) ([]byte, error) {
	var b bytes.Buffer
	if pod.Spec.HostNetwork {
		host, err := h.hosts()
		if err != nil {
			return nil, fmt.Errorf("failed to read the host's /etc/hosts: %w", err)
		}
		b.Write(host)
		if len(host) > 0 && host[len(host)-1] != '\n' {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString("# peapod-managed hosts file.\n")
		b.WriteString("127.0.0.1\tlocalhost\n")
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
		if ip != "" {
			fmt.Fprintf(&b, "%s\t%s\n", ip, name)
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.Bytes(), nil
}

// dnsSettings is a parsed resolv.conf.
type dnsSettings struct {
	// servers, searches and options are the nameserver, search and
	// options lines' values, in order.
	servers, searches, options []string
}

// resolvConf builds the pod's resolv.conf. peapod has no cluster DNS, so
// ClusterFirst (and ClusterFirstWithHostNet) fall back to the host's
// settings, as the kubelet does when it has no cluster DNS configured.
func resolvConf(pod *corev1.Pod, h hostFiles) ([]byte, error) {
	var d dnsSettings
	if pod.Spec.DNSPolicy != corev1.DNSNone {
		var err error
		if d, err = hostDNS(h); err != nil {
			return nil, err
		}
	}
	if c := pod.Spec.DNSConfig; c != nil {
		d.servers = dedupe(append(d.servers, c.Nameservers...))
		d.searches = dedupe(append(d.searches, c.Searches...))
		d.options = mergeOptions(d.options, c.Options)
	}
	if len(d.servers) > maxDNSNameservers {
		d.servers = d.servers[:maxDNSNameservers]
	}
	if len(d.searches) > maxDNSSearchPaths {
		d.searches = d.searches[:maxDNSSearchPaths]
	}
	var b bytes.Buffer
	for _, s := range d.servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(d.searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(d.searches, " "))
	}
	if len(d.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(d.options, " "))
	}
	return b.Bytes(), nil
}

// hostDNS parses the host's resolv.conf, switching to systemd-resolved's
// upstream file when the host's only points at the loopback stub.
func hostDNS(h hostFiles) (dnsSettings, error) {
	d := parseResolv(h.resolv)
	if !onlyLoopback(d.servers) {
		return d, nil
	}
	up, err := h.readUpstream()
	if err != nil {
		return d, fmt.Errorf("host resolv.conf points at a local stub resolver, and its upstream %q is unreadable: %w", systemdResolvConf, err)
	}
	return parseResolv(up), nil
}

// onlyLoopback reports whether there are servers and all are loopback.
func onlyLoopback(servers []string) bool {
	if len(servers) == 0 {
		return false
	}
	for _, s := range servers {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.IsLoopback() {
			return false
		}
	}
	return true
}

// parseResolv reads nameserver, search/domain and options lines.
func parseResolv(data []byte) dnsSettings {
	var d dnsSettings
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			d.servers = append(d.servers, f[1])
		case "search", "domain":
			// The last search/domain line wins, as in resolv.conf(5).
			d.searches = slices.Clone(f[1:])
		case "options":
			d.options = append(d.options, f[1:]...)
		}
	}
	return d
}

// mergeOptions applies dnsConfig options: one with the same name replaces
// the host's.
func mergeOptions(host []string, extra []corev1.PodDNSConfigOption) []string {
	index := map[string]int{}
	var out []string
	put := func(name, opt string) {
		if i, ok := index[name]; ok {
			out[i] = opt
			return
		}
		index[name] = len(out)
		out = append(out, opt)
	}
	for _, o := range host {
		name, _, _ := strings.Cut(o, ":")
		put(name, o)
	}
	for _, o := range extra {
		opt := o.Name
		if o.Value != nil {
			opt += ":" + *o.Value
		}
		put(o.Name, opt)
	}
	return out
}

// dedupe drops repeated strings, keeping the first.
func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
