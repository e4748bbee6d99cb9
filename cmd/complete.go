package cmd

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
)

// Shell completion (qkv completion bash|zsh|fish|powershell) of flag
// values, tensor names and metadata keys. Names come from the checkpoint's
// headers only (no tensor bytes); a remote input is never fetched for a
// completion — only a local path, or one in the Hugging Face cache with the
// network forbidden.

// flagValues are the fixed values of flags, by flag name; a command's own
// (command path, flag) entry wins.
var flagValues = map[string][]string{
	"color":      colorValues,
	"matrices":   {"q", "k", "v", "o", "q,k", "q,k,v,o"},
	"input-mode": {"forward", "raw"},
}

var commandFlagValues = map[string]map[string][]string{
	"qkv check":   {"format": {"text", "json", "github", "junit", "markdown"}},
	"qkv inspect": {"format": {"text", "json", "markdown"}},
	"qkv diff":    {"format": {"text", "json", "markdown"}},
}

// registerCompletions adds completion functions to every command of the
// tree that has the flags or arguments they complete, unless the command
// registered its own.
func registerCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c == root {
			return
		}
		for name, vals := range flagValues {
			addFlagValues(c, name, vals)
		}
		for name, vals := range commandFlagValues[c.CommandPath()] {
			addFlagValues(c, name, vals)
		}
		if c.Flags().Lookup("key") != nil {
			registerFlag(c, "key", func(c *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
				return completeKeys(c.Context(), args, prefix), cobra.ShellCompDirectiveNoFileComp
			})
		}
		if c.Flags().Lookup("layers") != nil {
			registerFlag(c, "layers", func(c *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
				return completeLayers(c.Context(), args, prefix), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
			})
		}
		if c.ValidArgsFunction == nil && strings.Contains(c.Use, "TENSOR") {
			c.ValidArgsFunction = func(c *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return nil, cobra.ShellCompDirectiveDefault // PATH: files
				}
				if len(args) == 1 {
					return completeTensors(c.Context(), args[0], prefix), cobra.ShellCompDirectiveNoFileComp
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		}
	}
	walk(root)
	if f := root.PersistentFlags().Lookup("color"); f != nil {
		registerFlag(root, "color", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return colorValues, cobra.ShellCompDirectiveNoFileComp
		})
	}
}

func addFlagValues(c *cobra.Command, name string, vals []string) {
	if name == "color" || c.Flags().Lookup(name) == nil {
		return // --color is the root's persistent flag: registered there
	}
	registerFlag(c, name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return vals, cobra.ShellCompDirectiveNoFileComp
	})
}

// registerFlag registers f unless the command registered a function for
// the flag itself (cobra refuses a second one).
func registerFlag(c *cobra.Command, name string, f func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)) {
	if _, ok := c.GetFlagCompletionFunc(name); ok {
		return
	}
	_ = c.RegisterFlagCompletionFunc(name, func(c *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return f(c, args, prefix)
	})
}

// completionCheckpoint opens path's headers for a completion: local
// inputs, or remote ones only as far as caches answer (HF_HUB_OFFLINE).
func completionCheckpoint(ctx context.Context, path string) *formats.Checkpoint {
	if ctx == nil {
		ctx = context.Background()
	}
	o := formats.Options{Context: ctx}
	if source.IsRemote(path) {
		eo := source.EnvOptions()
		eo.Offline = true
		cl, err := source.New(eo)
		if err != nil {
			return nil
		}
		o.Source = cl
	}
	ck, err := formats.Open(path, o)
	if err != nil {
		return nil
	}
	return ck
}

// completeTensors lists the tensor names of path that start with prefix.
func completeTensors(ctx context.Context, path, prefix string) []string {
	ck := completionCheckpoint(ctx, path)
	if ck == nil {
		return nil
	}
	defer ck.Close()
	var out []string
	for _, t := range ck.Tensors {
		if strings.HasPrefix(t.Name, prefix) {
			out = append(out, t.Name)
		}
	}
	return out
}

// completeKeys lists the metadata keys of args[0] that start with prefix:
// GGUF keys, a safetensors __metadata__'s keys, config.json's top-level
// keys.
func completeKeys(ctx context.Context, args []string, prefix string) []string {
	if len(args) == 0 {
		return nil
	}
	ck := completionCheckpoint(ctx, args[0])
	if ck == nil {
		return nil
	}
	defer ck.Close()
	var keys []string
	if g := ck.GGUF(); g != nil {
		for i := range g.KVs {
			keys = append(keys, g.KVs[i].Key)
		}
	}
	for _, f := range ck.Files {
		if f.Safetensors != nil {
			for _, kv := range f.Safetensors.Metadata {
				keys = append(keys, kv[0])
			}
		}
	}
	for k := range ck.Config {
		keys = append(keys, k)
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// completeLayers lists args[0]'s layer numbers after the part of prefix
// before its last comma ("0-3,1" completes to "0-3,10", "0-3,11", …).
func completeLayers(ctx context.Context, args []string, prefix string) []string {
	if len(args) == 0 {
		return nil
	}
	ck := completionCheckpoint(ctx, args[0])
	if ck == nil {
		return nil
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		return nil
	}
	head, last := "", prefix
	if i := strings.LastIndex(prefix, ","); i >= 0 {
		head, last = prefix[:i+1], prefix[i+1:]
	}
	var out []string
	for _, l := range m.Layers {
		n := strconv.Itoa(l.Index)
		if strings.HasPrefix(n, last) {
			out = append(out, head+n)
		}
	}
	return out
}
