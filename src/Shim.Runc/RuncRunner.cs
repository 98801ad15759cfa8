using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os;

namespace Shim.Runc;

/// <summary>Spawns runc through the process's one reaper and collects its output.</summary>
/// <param name="reaper">The reaper of the process, which alone may reap runc.</param>
public sealed class RuncRunner(Reaper reaper) : IRuncRunner
{
    private static readonly string[] Environment = BuildEnvironment();

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

            Task? feed = inWrite is null ? null : Task.Run(() => Feed(inWrite, io.Input), CancellationToken.None);
            Task<byte[]> stdoutTask = outRead is null ? Task.FromResult(Array.Empty<byte>()) : Task.Run(() => ReadAll(outRead), CancellationToken.None);
            Task<byte[]> stderrTask = errRead is null ? Task.FromResult(Array.Empty<byte>()) : Task.Run(() => ReadAll(errRead), CancellationToken.None);

            ChildExit exit;
            using (ct.Register(static state => Signals.Kill((int)state!, Signals.SIGKILL), child.Pid))
            {
                exit = await child.Exited.ConfigureAwait(false);
            }
            if (feed is not null)
            {
                await feed.ConfigureAwait(false);
            }
            // runc create/exec leave the container holding inherited pipes; those are never captured
            var output = await stdoutTask.ConfigureAwait(false);
            var error = await stderrTask.ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            return new RuncResult(exit.Status, output, RuncLog.Trim(error));
        }
        finally
        {
            inRead?.Dispose();
            inWrite?.Dispose();
            outRead?.Dispose();
            outWrite?.Dispose();
            errRead?.Dispose();
            errWrite?.Dispose();
        }
    }

    private static void Feed(SafeFileHandle pipe, ReadOnlyMemory<byte> input)
    {
        try
        {
            using var stream = new FileStream(pipe, FileAccess.Write, 1);
            stream.Write(input.Span);
        }
        catch (IOException)
        {
            // runc exited without reading its input; its exit status tells the story
        }
    }

    private static byte[] ReadAll(SafeFileHandle pipe)
    {
        using var stream = new FileStream(pipe, FileAccess.Read, 1);
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer, 16 * 1024);
        return buffer.ToArray();
    }

    // runc must not think it is a systemd service of ours (the Go shim drops NOTIFY_SOCKET too)
    private static string[] BuildEnvironment() =>
        [.. SpawnEnvironment.Inherit(key => key is "NOTIFY_SOCKET" || key.StartsWith("DOTNET_", StringComparison.Ordinal))];
}
