package probes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxExecOutput is how much of an exec probe's output becomes the message.
const maxExecOutput = 10 << 10

// ExecHandler is the exec probe (pkg/probe/exec): the argv runs in the
// container through the injected Runner, with no shell.
type ExecHandler struct {
	// argv is the command, already expanded.
	argv []string
	// timeout is the probe's timeoutSeconds, enforced by run.
	timeout time.Duration
	// run executes argv inside the container.
	run Runner
	// timedOut is the message of a timed-out run, built once.
	timedOut string
}

var _ Handler = (*ExecHandler)(nil)

// NewExecHandler returns an exec handler running argv through run.
func NewExecHandler(argv []string, timeout time.Duration, run Runner) *ExecHandler {
	return &ExecHandler{
		argv:     argv,
		timeout:  timeout,
		run:      run,
		timedOut: fmt.Sprintf("command %q timed out", strings.Join(argv, " ")),
	}
}

// Probe runs the command: exit 0 is success, another exit code a failure
// with the output (stdout then stderr, at most 10 KiB) as the message, a
// timeout a failure `command "…" timed out` (ExecProbeTimeout, GA since
// 1.20); any other runner error is a probe error.
func (h *ExecHandler) Probe(ctx context.Context, _ string) (Outcome, string, error) {
	out, code, err := h.run(ctx, h.argv, h.timeout)
	if err != nil {
		if errors.Is(err, ErrExecTimeout) {
			return OutcomeFailure, h.timedOut, nil
		}
		return OutcomeUnknown, "", fmt.Errorf("failed to run exec probe %q: %w", h.argv, err)
	}
	if len(out) > maxExecOutput {
		out = out[:maxExecOutput]
	}
	if code == 0 {
		return OutcomeSuccess, string(out), nil
	}
	return OutcomeFailure, string(out), nil
}

// ExpandCommand expands $(VAR) references in a probe command from the
// container's static env values, as kubecontainer.ExpandContainerCommandOnlyStatic:
// an undefined reference stays as written, $$ escapes a $, and nothing is
// run through a shell.
func ExpandCommand(cmd []string, env map[string]string) []string {
	if len(env) == 0 || len(cmd) == 0 {
		return cmd
	}
	out := make([]string, len(cmd))
	for i, arg := range cmd {
		out[i] = expand(arg, env)
	}
	return out
}

// expand is third_party/forked/golang/expansion.Expand with a map mapping.
func expand(input string, env map[string]string) string {
	var buf strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != '$' || cursor+1 >= len(input) {
			continue
		}
		buf.WriteString(input[checkpoint:cursor])
		read, isVar, advance := readVariableName(input[cursor+1:])
		if isVar {
			if v, ok := env[read]; ok {
				buf.WriteString(v)
			} else {
				buf.WriteString("$(" + read + ")")
			}
		} else {
			buf.WriteString(read)
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return buf.String() + input[checkpoint:]
}

// readVariableName reads what follows a $: an escaped $, a $(NAME)
// reference, or anything else, which is kept literally.
func readVariableName(input string) (string, bool, int) {
	switch input[0] {
	case '$':
		return "$", false, 1
	case '(':
		for i := 1; i < len(input); i++ {
			if input[i] == ')' {
				return input[1:i], true, i + 1
			}
		}
		return "$(", false, 1
	}
	return "$" + input[0:1], false, 1
}
