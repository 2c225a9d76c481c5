package manifest

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestEtcFiles(t *testing.T) {
	const stub = "# systemd stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
	const upstream = "nameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch home.arpa\n"
	tests := []struct {
		name       string
		mutate     func(p *corev1.Pod)
		hostResolv string
		upstream   string // "" = unreadable
		hostname   string
		hosts      string
		resolv     string
		wantErr    bool
	}{
		{
			name: "pod network with hostAliases",
			mutate: func(p *corev1.Pod) {
				p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.9", Hostnames: []string{"db", "db.local"}}}
			},
			hostResolv: "nameserver 1.1.1.1\nsearch example.com\n",
			hostname:   "web\n",
			hosts: "# peapod-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
				"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
				"10.88.0.5\tweb\n\n# Entries added by HostAliases.\n10.0.0.9\tdb\tdb.local\n",
			resolv: "nameserver 1.1.1.1\nsearch example.com\n",
		},
		{
			name:       "stub resolver is replaced by its upstream",
			mutate:     func(p *corev1.Pod) { p.Spec.Hostname = "front" },
			hostResolv: stub, upstream: upstream,
			hostname: "front\n",
			resolv:   "nameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch home.arpa\n",
		},
		{name: "stub resolver without upstream", hostResolv: stub, wantErr: true},
		{
			name: "dnsConfig merged into the host's",
			mutate: func(p *corev1.Pod) {
				p.Spec.DNSPolicy = corev1.DNSDefault
				p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "9.9.9.9"}, Searches: []string{"svc.local"},
					Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "rotate"}}}
			},
			hostResolv: "nameserver 1.1.1.1\noptions ndots:5 timeout:2\nsearch example.com\n",
			hostname:   "web\n",
			resolv:     "nameserver 1.1.1.1\nnameserver 9.9.9.9\nsearch example.com svc.local\noptions ndots:2 timeout:2 rotate\n",
		},
		{
			name: "dnsPolicy None uses only dnsConfig",
			mutate: func(p *corev1.Pod) {
				p.Spec.DNSPolicy = corev1.DNSNone
				p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"8.8.8.8"}}
			},
			hostResolv: stub, hostname: "web\n",
			resolv: "nameserver 8.8.8.8\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			pod.Name = "web"
			if tt.mutate != nil {
				tt.mutate(pod)
			}
			SetDefaults(pod)
			h := hostFiles{
				resolv: []byte(tt.hostResolv),
				readUpstream: func() ([]byte, error) {
					if tt.upstream == "" {
						return nil, os.ErrNotExist
					}
					return []byte(tt.upstream), nil
				},
				hosts:    func() ([]byte, error) { return nil, errors.New("host /etc/hosts must not be read for pod networking") },
				hostname: func() (string, error) { return "", errors.New("host name must not be read for pod networking") },
			}
			hostname, hosts, resolv, err := etcFiles(pod, "10.88.0.5", h)
			if tt.wantErr {
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("etcFiles() error = %v, want ErrNotExist", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.hostname, string(hostname)); diff != "" {
				t.Errorf("hostname mismatch (-want +got):\n%s", diff)
			}
			if tt.hosts != "" {
				if diff := cmp.Diff(tt.hosts, string(hosts)); diff != "" {
					t.Errorf("hosts mismatch (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.resolv, string(resolv)); diff != "" {
				t.Errorf("resolv.conf mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEtcFilesHostNetwork(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Name = "web"
	pod.Spec.HostNetwork = true
	pod.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.9", Hostnames: []string{"db"}}}
	SetDefaults(pod)
	h := hostFiles{
		resolv:   []byte("nameserver 10.0.0.1\n"),
		hosts:    func() ([]byte, error) { return []byte("127.0.0.1 localhost\n10.0.0.2 vm"), nil },
		hostname: func() (string, error) { return "vm", nil },
	}
	hostname, hosts, _, err := etcFiles(pod, "10.0.0.2", h)
	if err != nil {
		t.Fatal(err)
	}
	if string(hostname) != "vm\n" {
		t.Errorf("hostname = %q, want the host's", hostname)
	}
	want := "127.0.0.1 localhost\n10.0.0.2 vm\n\n# Entries added by HostAliases.\n10.0.0.9\tdb\n"
	if diff := cmp.Diff(want, string(hosts)); diff != "" {
		t.Errorf("hosts mismatch (-want +got):\n%s", diff)
	}
}
