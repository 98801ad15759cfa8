using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os;
using Shim.Os.Io;

namespace Shim.Runc;

/// <summary>Spawns runc through the process's one reaper and collects its output on the I/O loop.</summary>
/// <param name="reaper">The reaper of the process, which alone may reap runc.</param>
/// <param name="loop">
/// The loop that reads runc's captured stdout and stderr and writes its input: a call that runs for
/// minutes (hooks, CRIU) holds no thread while it runs.
/// </param>
public sealed class RuncRunner(Reaper reaper, IoLoop loop) : IRuncRunner
{
    /// <summary>
    /// Most bytes of runc's stdout, and of its stderr, one call keeps (16 MiB). What runc prints
    /// (state, ps, features, events --stats, an error) is kilobytes; a runc that prints more has its
    /// pipe closed at the limit and the call fails (<see cref="RuncResult.Truncated"/>).
    /// </summary>
    public const int OutputLimit = 16 * 1024 * 1024;

    private static readonly string[] Environment = BuildEnvironment();
    private static readonly Task<FeedResult> NoInput = Task.FromResult(default(FeedResult));
    private static readonly Task<CaptureResult> NotCaptured = Task.FromResult(new CaptureResult([], false, 0));

    /// <inheritdoc />
    public async Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(io);
        var fds = new Dictionary<int, SafeHandle>(3);
        SafeFileHandle? inRead = null, inWrite = null, outRead = null, outWrite = null, errRead = null, errWrite = null;
        try
        {
            if (io.Stdin is { } stdin)
            {
                fds[0] = stdin;
            }
            else if (!io.Input.IsEmpty)
            {
                (inRead, inWrite) = Pipes.Create();
                fds[0] = inRead;
            }
            if (io.Stdout is { } stdout)
            {
                fds[1] = stdout;
            }
            else
            {
                (outRead, outWrite) = Pipes.Create();
                fds[1] = outWrite;
            }
            if (io.Stderr is { } stderr)
            {
                fds[2] = stderr;
            }
            else
            {
                (errRead, errWrite) = Pipes.Create();
                fds[2] = errWrite;
            }

            var child = reaper.Spawn(new SpawnOptions { Path = args[0], Args = args, Environment = Environment, Fds = fds });
            // the child holds its own copies now; ours must go so that EOF can arrive
            inRead?.Dispose();
            outWrite?.Dispose();
            errWrite?.Dispose();

            // the loop owns our ends from here and closes each when its copy ends; the cancellation
            // (the caller's, or the watchdog's) also ends a read that a grandchild holding the pipe keeps open
            var feed = inWrite is null ? NoInput : loop.FeedAsync(inWrite, io.Input, ct);
            var output = outRead is null ? NotCaptured : loop.DrainAsync(outRead, OutputLimit, ct);
            var error = errRead is null ? NotCaptured : loop.DrainAsync(errRead, OutputLimit, ct);
            inWrite = outRead = errRead = null;

            ChildExit exit;
            using (ct.Register(static state => Signals.Kill((int)state!, Signals.SIGKILL), child.Pid))
            {
                exit = await child.Exited.ConfigureAwait(false);
            }
            // an EPIPE here means runc exited without reading its input: its exit status tells the story
            await feed.ConfigureAwait(false);
            // runc create/exec leave the container holding inherited pipes; those are never captured
            var stdoutBytes = await output.ConfigureAwait(false);
            var stderrBytes = await error.ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            return new RuncResult(exit.Status, stdoutBytes.Data, RuncLog.Trim(stderrBytes.Data))
            {
                Truncated = stdoutBytes.Truncated || stderrBytes.Truncated,
            };
        }
        finally
        {
            // what a failed spawn left; the loop closes the ends it took
            inRead?.Dispose();
            inWrite?.Dispose();
            outRead?.Dispose();
            outWrite?.Dispose();
            errRead?.Dispose();
            errWrite?.Dispose();
        }
    }

    // runc must not think it is a systemd service of ours (the Go shim drops NOTIFY_SOCKET too)
    private static string[] BuildEnvironment() =>
        [.. SpawnEnvironment.Inherit(key => key is "NOTIFY_SOCKET" || key.StartsWith("DOTNET_", StringComparison.Ordinal))];
}
