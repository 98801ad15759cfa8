using Containerd.Events;
using Containerd.Task.V2;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Core.Options;
using Shim.Core.Processes;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Runc;
using Shim.Os.Mounting;

namespace Shim.Core.Service;

public sealed partial class TaskService
{
    /// <summary>Checkpoint: runc checkpoint of init into the request's path; no event (as the Go shim).</summary>
    public async Task<Empty> CheckpointAsync(CheckpointTaskRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("checkpoint", request.Id);
        var container = Get(request.Id);
        var options = CheckpointRequestOptions.Decode(request.Options);
        // the Go shim uses the request's path; containerd always fills it
        string imagePath = request.Path.Length > 0 ? request.Path : options.ImagePath;
        if (imagePath.Length == 0)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"checkpoint {request.Id}: no image path given");
        }
        await container.Init.CheckpointAsync(imagePath, options, ct).ConfigureAwait(false);
        return new Empty();
    }

    /// <summary>
    /// Create with a checkpoint: bundle files and rootfs as usual, but no runc call. The init waits
    /// in the restore-pending state (CREATED, pid 0) until Start runs runc restore.
    /// </summary>
    private Container CreateForRestore(CreateTaskRequest request, RuntimeOptions options)
    {
        string id = request.Id, bundle = request.Bundle;
        WriteBundleFiles(bundle, options);
        var runc = RuncFor(bundle, options);
        bool mounted = MountRootfs(request, bundle);
        try
        {
            var stdio = new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal);
            var init = InitProcess.ForRestore(id, stdio, runc, NewSequencer(id), new RestoreSource(request.Checkpoint, request.ParentCheckpoint));
            var container = new Container(id, bundle, mounted, Container.SpecSharesPidNamespace(bundle), init) { Options = options, Namespace = _settings.Namespace, Stdio = _stdio };
            _events.Created(request, pid: 0);
            _stdio.Log.Info("container created from a checkpoint", ShimLog.Field("id", id) + " " + ShimLog.Field("checkpoint", request.Checkpoint));
            return container;
        }
        catch
        {
            if (mounted)
            {
                Mounts.UnmountRecursive(Path.Combine(bundle, BundleFiles.Rootfs));
            }
            throw;
        }
    }

}
