package main
func mxCmd(args []string) error { return nil }
