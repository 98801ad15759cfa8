using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Os;

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
    private readonly ShimLogger _log;

    private BinaryLogger(ChildProcess child, SafeFileHandle stdout, SafeFileHandle stderr, ShimLogger log)
    {
        _log = log;
        _child = child;
        Stdout = stdout;
        Stderr = stderr;
    }

    /// <summary>Write end of the stdout pipe (for runc).</summary>
    public SafeFileHandle Stdout { get; }

    /// <summary>Write end of the stderr pipe (for runc).</summary>
    public SafeFileHandle Stderr { get; }

    /// <summary>Starts the logger of <paramref name="uri"/> as a child of <paramref name="reaper"/> and waits until it is ready.</summary>
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
            throw;
        }
        finally
        {
            outRead.Dispose();
            errRead.Dispose();
            readyWrite.Dispose();
        }
        using (readyRead)
        {
            var logger = new BinaryLogger(child, outWrite, errWrite, log);
            if (!WaitReady(readyRead, strict))
            {
                logger.Stop();
                outWrite.Dispose();
                errWrite.Dispose();
                throw new ShimException(ErrorKind.Unknown, $"logging binary {path} did not signal readiness");
            }
            return logger;
        }
    }

    /// <summary>SIGTERM, then SIGKILL after a grace period, without blocking the caller.</summary>
    public void Stop()
    {
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

    private static bool WaitReady(SafeFileHandle ready, bool strict)
    {
        var read = Task.Run(() =>
        {
            using var stream = new FileStream(ready, FileAccess.Read, 1);
            var buffer = new byte[1];
            return stream.Read(buffer, 0, 1);
        });
        if (!read.Wait(ReadyTimeout))
        {
            return false;
        }
        return read.Result == 1 || !strict;
    }
}
