using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Core.Options;
using Shim.Core.Stdio;
using Shim.Runc;
using Shim.Os.Terminals;

namespace Shim.Core.Processes;

internal sealed partial class InitProcess
{
    /// <summary>Where a restore comes from; null once restored, and for containers runc created.</summary>
    public RestoreSource? Restore { get; private set; }

    /// <summary>Records an init created from a checkpoint: no runc call, pid 0, until Start restores it.</summary>
    private InitProcess(string containerId, StdioPaths stdio, RuncClient runc, ExitSequencer sequencer, RestoreSource restore)
        : this(containerId, stdio, runc, sequencer, InitState.RestorePending)
    {
        Restore = restore;
    }

    /// <summary>An init process that Start will restore from <paramref name="restore"/>'s image.</summary>
    internal static InitProcess ForRestore(string containerId, StdioPaths stdio, RuncClient runc, ExitSequencer sequencer, RestoreSource restore) =>
        new(containerId, stdio, runc, sequencer, restore);

    /// <summary>Checkpoint of a running or paused container (see <see cref="RunCheckpointAsync"/>).</summary>
    public async Task CheckpointAsync(string imagePath, CheckpointRequestOptions options, CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await State.CheckpointAsync(this, imagePath, options, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// runc checkpoint. The CRIU work dir is the request's, else the
    /// container's CriuWorkPath, else <c>&lt;bundle&gt;/work/criu-work</c> (removed afterwards). On
    /// failure CRIU's dump.log is kept as <c>&lt;bundle&gt;/criu-dump.log</c>. With Exit the container
    /// is not left running: its exit is reaped and reported like any other.
    /// </summary>
    internal async Task RunCheckpointAsync(string imagePath, CheckpointRequestOptions options, CancellationToken ct)
    {
        var container = Container ?? throw new ShimException(ErrorKind.Internal, $"checkpoint {ContainerId}: container not set up");
        string work = options.WorkPath.Length > 0 ? options.WorkPath : container.Options.CriuWorkPath;
        bool temporary = work.Length == 0;
        if (temporary)
        {
            work = Path.Combine(container.Bundle, BundleFiles.Work, "criu-work");
        }
        // runc makes the work dir with mkdir, not mkdir -p (containerd's <bundle>/work normally exists)
        string parent = CheckpointWorkParent(work);
        try
        {
            Directory.CreateDirectory(parent);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"checkpoint {ContainerId}: cannot make the parent of work path {work}: {ex.Message}", ex);
        }
        var runcOptions = new CheckpointOptions(imagePath, work)
        {
            ParentPath = options.ParentPath.Length > 0 ? options.ParentPath : null,
            TcpEstablished = options.OpenTcp,
            ExternalUnixSockets = options.ExternalUnixSockets,
            ShellJob = options.Terminal,
            FileLocks = options.FileLocks,
            EmptyNamespaces = options.EmptyNamespaces,
            LeaveRunning = !options.Exit,
        };
        try
        {
            await Runc.CheckpointAsync(ContainerId, runcOptions, ct).ConfigureAwait(false);
        }
        catch (RuncException ex)
        {
            string dumpLog = Path.Combine(container.Bundle, "criu-dump.log");
            try
            {
                File.Copy(Path.Combine(work, "dump.log"), dumpLog, overwrite: true);
            }
            catch (Exception copy) when (copy is IOException or UnauthorizedAccessException)
            {
                Sequencer.Log.Warn("could not copy CRIU's dump.log", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("error", copy.Message));
            }
            throw new ShimException(ErrorKind.Unknown, $"checkpoint {ContainerId}: {ex.Message} (CRIU log: {dumpLog})", ex);
        }
        finally
        {
            if (temporary)
            {
                TryDeleteDirectory(work);
            }
        }
        Sequencer.Log.Info("container checkpointed", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("image", imagePath) + " " + ShimLog.Field("exit", options.Exit));
    }

    /// <summary>
    /// The directory that must exist for CRIU's work dir <paramref name="work"/>; InvalidArgument for
    /// a path that cannot be one ("/", a NUL byte), which used to leave as an ArgumentException.
    /// </summary>
    internal static string CheckpointWorkParent(string work)
    {
        string? parent = null;
        try
        {
            parent = Path.GetDirectoryName(Path.GetFullPath(work));
        }
        catch (ArgumentException)
        {
            // a NUL byte: no such path can exist
        }
        return parent is { Length: > 0 } ? parent
            : throw new ShimException(ErrorKind.InvalidArgument, $"checkpoint work path \"{work}\" is not a usable directory path");
    }

    /// <summary>
    /// <c>runc restore --detach</c> with the process's stdio through the one start protocol
    /// (<see cref="ProcessStarter"/>): running (moved from <paramref name="from"/>) once runc
    /// returned; TaskStart goes out before any TaskExit. <paramref name="beforeStartEvent"/> runs with
    /// the pid before the start event (cgroup and OOM registration).
    /// </summary>
    internal async Task RunRestoreAsync(ExitRouter router, Action<int>? beforeStartEvent, ProcessState from, CancellationToken ct)
    {
        var restore = Restore ?? throw new ShimException(ErrorKind.Internal, $"restore {ContainerId}: no checkpoint recorded");
        var container = Container ?? throw new ShimException(ErrorKind.Internal, $"restore {ContainerId}: container not set up");
        string pidFile = Path.Combine(container.Bundle, BundleFiles.InitPid);
        var plan = new StartPlan(router, pidFile, container.Options.IoUid, container.Options.IoGid, container.Namespace,
            (io, token) => Runc.RestoreAsync(ContainerId, new RestoreOptions(restore.ImagePath, container.Bundle, pidFile)
            {
                // as containerd's shim: the CriuWorkPath option, else the container's work dir (<bundle>/work), where restore.log stays
                WorkPath = container.Options.CriuWorkPath.Length > 0 ? container.Options.CriuWorkPath : Path.Combine(container.Bundle, BundleFiles.Work),
                ParentPath = restore.ParentPath.Length > 0 ? restore.ParentPath : null,
                ConsoleSocket = io.ConsoleSocketPath,
                NoPivot = container.Options.NoPivotRoot,
            }, io.RuncSide, token))
        {
            Stdio = container.Stdio,
            BeforeStartEvent = beforeStartEvent,
            RunningFrom = from,
        };
        await ProcessStarter.StartAsync(this, plan, ct).ConfigureAwait(false);
        Restore = null;
        Sequencer.Log.Info("container restored", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("pid", Pid) + " " + ShimLog.Field("image", restore.ImagePath));
    }

    private void TryDeleteDirectory(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Sequencer.Log.Warn("could not remove the CRIU work dir", ShimLog.Field("dir", dir) + " " + ShimLog.Field("error", ex.Message));
        }
    }
}

/// <summary>The checkpoint a container was created from (CreateTaskRequest checkpoint / parent_checkpoint).</summary>
/// <param name="ImagePath">The CRIU image directory containerd unpacked.</param>
/// <param name="ParentPath">Parent image, or empty.</param>
internal sealed record RestoreSource(string ImagePath, string ParentPath);
