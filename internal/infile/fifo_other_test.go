//go:build !unix

package infile

import "errors"

func mkfifo(string) error { return errors.New("no FIFOs here") }
