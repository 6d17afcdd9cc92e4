package event

import "testing"

// TestProcessEnrichment covers the host-side enrichment of process
// events: JSON fields and a binary round trip.
func TestProcessEnrichment(t *testing.T) {
	e := sampleProcess()
	p := &e.Process
	p.ParentName, p.ParentExe = []byte("sshd"), []byte("/usr/sbin/sshd")
	p.ContainerID = []byte("3f2a9c0d4b5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8")
	p.UserName, p.GroupName = []byte("alice"), []byte("staff")
	testJSON(t, "enriched", e, map[string]string{
		"process.parent.pid":        `1`,
		"process.parent.name":       `"sshd"`,
		"process.parent.executable": `"/usr/sbin/sshd"`,
		"container.id":              `"3f2a9c0d4b5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"`,
		"user.id":                   `"1000"`,
		"user.name":                 `"alice"`,
		"group.name":                `"staff"`,
	})
	testJSON(t, "not enriched", sampleProcess(), map[string]string{
		"process.parent.pid":  `1`,
		"process.parent.name": absent,
		"container":           absent,
		"user.name":           absent,
		"group.name":          absent,
	})

	var back Event
	if err := DecodeBinary(&back, AppendBinary(nil, e)); err != nil {
		t.Fatal(err)
	}
	q := &back.Process
	if string(q.ParentName) != "sshd" || string(q.ParentExe) != "/usr/sbin/sshd" || string(q.ContainerID) != string(p.ContainerID) ||
		string(q.UserName) != "alice" || string(q.GroupName) != "staff" {
		t.Fatalf("round trip lost enrichment: %+v", q)
	}
}
