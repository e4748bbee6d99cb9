package cmd

import (
	"bytes"
	"context"
	"testing"
)

func BenchmarkNewRoot(b *testing.B) {
	for b.Loop() {
		NewRoot(&Streams{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Width: 80})
	}
}

func BenchmarkRunVersion(b *testing.B) {
	for b.Loop() {
		Run(context.Background(), []string{"version"}, &Streams{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Width: 80})
	}
}

// TestCommandsByName: the commands a run builds alone are the commands of
// the whole tree, under the names they answer to.
func TestCommandsByName(t *testing.T) {
	s := &Streams{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Width: 80}
	root := NewRoot(s)
	for _, c := range root.Commands() {
		ctor, ok := commandsByName[c.Name()]
		if !ok {
			t.Errorf("qkv %s is not in commandsByName: a run builds every command for it", c.Name())
			continue
		}
		if got := ctor(s); got.Name() != c.Name() || len(got.Aliases) != len(c.Aliases) {
			t.Errorf("commandsByName[%q] builds %q", c.Name(), got.Name())
		}
	}
	if len(commandsByName) != len(root.Commands()) {
		t.Errorf("%d commands by name, %d in the tree", len(commandsByName), len(root.Commands()))
	}
	// A run of one command behaves as the whole tree does: help, usage
	// errors, the persistent flags.
	for _, args := range [][]string{{"ls", "--help"}, {"ls", "--nope"}, {"ls", "--color", "never", "--no-cache", "--allow-http", "../testdata/tiny-llama"}, {"version", "x"}} {
		var o1, e1, o2, e2 bytes.Buffer
		c1 := Run(context.Background(), args, &Streams{Out: &o1, Err: &e1, Width: 80})
		root := NewRoot(&Streams{Out: &o2, Err: &e2, Width: 80})
		_, err := execute(context.Background(), root, args, &Streams{Out: &o2, Err: &e2, Width: 80})
		c2 := ExitOK
		if err != nil {
			c2 = exitCode(err)
		}
		if c1 != c2 || o1.String() != o2.String() {
			t.Errorf("%v: exit %d alone, %d in the tree; stdout\n%s\n---\n%s", args, c1, c2, o1.String(), o2.String())
		}
	}
}
