using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Os;
using Shim.Os.Io;

namespace Shim.Core.Stdio;

/// <summary>
/// A `binary://` (or `binary-v2://`) logging driver: a program that reads the container's stdout on
/// fd 3 and stderr on fd 4 and signals readiness on fd 5 (PROTOCOL.md §11). runc gets the pipes'
/// write ends directly, so the shim copies nothing.
/// </summary>
internal sealed class BinaryLogger
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(12);

    private readonly ChildProcess _child;
    private readonly SafeFileHandle _ready;
    private readonly string _path;
    private readonly bool _strict;
    private readonly ShimLogger _log;

    private BinaryLogger(ChildProcess child, SafeFileHandle stdout, SafeFileHandle stderr, SafeFileHandle ready, string path, bool strict, ShimLogger log)
    {
        _log = log;
        _child = child;
        _ready = ready;
        _path = path;
        _strict = strict;
        Stdout = stdout;
        Stderr = stderr;
    }

    /// <summary>Write end of the stdout pipe (for runc).</summary>
    public SafeFileHandle Stdout { get; }

    /// <summary>Write end of the stderr pipe (for runc).</summary>
    public SafeFileHandle Stderr { get; }

    /// <summary>
    /// Starts the logger of <paramref name="uri"/> as a child of <paramref name="reaper"/>; whether it
    /// came up is <see cref="WaitReadyAsync"/>'s to tell. Its owner calls <see cref="Stop"/> in any case.
    /// </summary>
    public static BinaryLogger Start(Reaper reaper, Uri uri, string containerId, string ns, ShimLogger log)
    {
        bool strict = uri.Scheme == "binary-v2"; // v2 requires the readiness byte; v1 also accepts a bare close
        string path = Uri.UnescapeDataString(uri.AbsolutePath);
        var args = new List<string> { path };
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            args.Add(Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]));
            if (eq >= 0)
            {
                args.Add(Uri.UnescapeDataString(pair[(eq + 1)..]));
            }
        }
        var env = SpawnEnvironment.Inherit(key => key.StartsWith("DOTNET_", StringComparison.Ordinal), "CONTAINER_ID=" + containerId, "CONTAINER_NAMESPACE=" + ns);

        var (outRead, outWrite) = Pipes.Create();
        var (errRead, errWrite) = Pipes.Create();
        var (readyRead, readyWrite) = Pipes.Create();
        ChildProcess child;
        try
        {
            if (!File.Exists(path))
            {
                throw new ShimException(ErrorKind.InvalidArgument, $"logging binary {path} does not exist");
            }
            child = reaper.Spawn(new SpawnOptions
            {
                Path = path,
                Args = args,
                Environment = env,
                Fds = new Dictionary<int, SafeHandle> { [3] = outRead, [4] = errRead, [5] = readyWrite },
            });
        }
        catch
        {
            outWrite.Dispose();
            errWrite.Dispose();
            readyRead.Dispose();
            throw;
        }
        finally
        {
            outRead.Dispose();
            errRead.Dispose();
            readyWrite.Dispose();
        }
        return new BinaryLogger(child, outWrite, errWrite, readyRead, path, strict, log);
    }

    /// <summary>
    /// Waits on <paramref name="loop"/>, holding no thread, until the logger signalled readiness on its
    /// fd 5: a byte, or (binary://) its close; at most 10 s. Throws when it did not; its owner stops it.
    /// </summary>
    /// <remarks>containerd's shim reads one byte from that pipe before it runs runc (NewBinaryIO); an error other than EOF fails there too.</remarks>
    public async Task WaitReadyAsync(IoLoop loop, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ReadyTimeout);
        var read = await loop.ReadFirstAsync(_ready, 1, timeout.Token).ConfigureAwait(false);
        if (read.Data.Length == 1 || (read.Errno == 0 && !_strict))
        {
            return;
        }
        ct.ThrowIfCancellationRequested();
        throw new ShimException(ErrorKind.Unknown, $"logging binary {_path} did not signal readiness");
    }

    /// <summary>SIGTERM, then SIGKILL after a grace period, without blocking the caller.</summary>
    public void Stop()
    {
        _ready.Dispose();   // a no-op once WaitReadyAsync handed it to the loop, which closes it itself
        if (_child.Exited.IsCompleted)
        {
            return;
        }
        Signals.Kill(_child.Pid, Signals.SIGTERM);
        _ = Task.Run(async () =>
        {
            if (await Task.WhenAny(_child.Exited, Task.Delay(StopGrace)).ConfigureAwait(false) != _child.Exited)
            {
                _log.Warn("logging binary ignored SIGTERM; killing it", ShimLog.Field("pid", _child.Pid));
                Signals.Kill(_child.Pid, Signals.SIGKILL);
            }
        });
    }
}
