package resolve

import (
	"fmt"
	"net/netip"
	"strings"
)

// ReverseName is the RFC 5782 §2.1/§2.4 DNSBL query name for ip under zone: reversed octets
// for IPv4, 32 reversed nibbles for IPv6, as an FQDN with trailing dot. An IPv4-mapped IPv6
// address is taken as the IPv4 address it carries, since that is how a dual-stack listener
// reports an IPv4 client. It returns "" for an invalid address.
func ReverseName(ip netip.Addr, zone string) string {
	if !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	var sb strings.Builder
	if ip.Is4() {
		b := ip.As4()
		fmt.Fprintf(&sb, "%d.%d.%d.%d.", b[3], b[2], b[1], b[0])
	} else {
		const hex = "0123456789abcdef"
		b := ip.As16()
		for i := len(b) - 1; i >= 0; i-- {
			sb.WriteByte(hex[b[i]&0x0f])
			sb.WriteByte('.')
			sb.WriteByte(hex[b[i]>>4])
			sb.WriteByte('.')
		}
	}
	zone = strings.Trim(strings.TrimSpace(zone), ".")
	if zone != "" {
		sb.WriteString(zone)
		sb.WriteByte('.')
	}
	return sb.String()
}
