using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Core;
using Shim.Core.Cli;
using Shim.Core.Options;
using Shim.Os;
using Shim.Os.Io;
using Shim.Protos;
using Shim.Runc;
using Shim.Os.Mounting;

namespace Shim.Host;

/// <summary>
/// The `delete` action: containerd runs it after every shim teardown and after a shim died, so it
/// must be cheap and idempotent. Force-deletes the runc container if runc still has it, unmounts the rootfs and prints
/// a DeleteResponse.
/// </summary>
internal static class DeleteCommand
{
    // 128+SIGKILL, as the Go shim reports, when no exit was recorded
    private const uint UnknownExitStatus = 137;

    public static async Task<int> RunAsync(ShimArgs args, Reaper reaper)
    {
        string bundle = args.Bundle.Length > 0 ? args.Bundle : Directory.GetCurrentDirectory();
        var options = ReadOptions(bundle);
        // runc keeps each container as a directory under its root: when the serving shim already
        // deleted it (the normal teardown) there is no runc process worth starting
        if (Directory.Exists(Path.Combine(options.RuncRoot(args.Namespace), args.Id)))
        {
            await ForceDeleteAsync(args, bundle, options, reaper).ConfigureAwait(false);
        }
        if (Shim.Core.Sandbox.OrphanedPod.IsPodBundle(bundle))
        {
            try
            {
                Shim.Core.Sandbox.OrphanedPod.CleanUp(bundle, args.Id);
            }
            catch (Exception ex) when (ex is IOException or ErrnoException or UnauthorizedAccessException)
            {
                StdStreams.WriteStderr($"failed to clean up pod {args.Id}: {ex.Message}");
            }
        }
        try
        {
            Mounts.UnmountRecursive(Path.Combine(bundle, BundleFiles.Rootfs));
        }
        catch (ErrnoException ex)
        {
            StdStreams.WriteStderr($"failed to unmount rootfs of {args.Id}: {ex.Message}");
        }
        // the serving shim recorded init's exit in the bundle; without it the status is truly unknown
        var recorded = Shim.Core.Processes.ExitRecord.Read(bundle);
        var response = new DeleteResponse
        {
            Pid = ReadPid(Path.Combine(bundle, BundleFiles.InitPid)),
            ExitStatus = recorded is { } r ? (uint)r.Status : UnknownExitStatus,
            ExitedAt = Timestamps.From(recorded?.ExitedAt ?? DateTimeOffset.UtcNow),
        };
        StdStreams.WriteStdout(response.ToByteArray());
        return 0;
    }

    private static async Task ForceDeleteAsync(ShimArgs args, string bundle, RuntimeOptions options, Reaper reaper)
    {
        try
        {
            reaper.Start();
            var runc = new RuncClient(
                new RuncConfig(OptionsCodec.ResolveBinary(options.BinaryName), options.RuncRoot(args.Namespace), Path.Combine(bundle, BundleFiles.RuncLog), options.SystemdCgroup),
                new RuncRunner(reaper, IoLoop.Shared));   // started only when runc is run: the action stays cheap
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await runc.DeleteAsync(args.Id, force: true, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RuncException or Shim.Core.Errors.ShimException or OperationCanceledException or ErrnoException)
        {
            if (ex is not RuncException { IsNotFound: true })
            {
                StdStreams.WriteStderr($"failed to delete container {args.Id}: {ex.Message}");
            }
        }
    }

    private static RuntimeOptions ReadOptions(string bundle)
    {
        try
        {
            return OptionsCodec.FromJson(File.ReadAllBytes(Path.Combine(bundle, BundleFiles.Options)));
        }
        catch (IOException)
        {
            return new RuntimeOptions(); // a shim that died before Create wrote nothing; delete still succeeds
        }
    }

    private static uint ReadPid(string path)
    {
        try
        {
            return uint.TryParse(File.ReadAllText(path).Trim(), out uint pid) ? pid : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
