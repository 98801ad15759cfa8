using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Protos;

namespace Shim.Core.Options;

/// <summary>The options of a Checkpoint request, whatever message type the client sent them in.</summary>
public sealed record CheckpointRequestOptions
{
    /// <summary>Stop the container after the dump (no --leave-running).</summary>
    public bool Exit { get; init; }
    /// <summary>--tcp-established.</summary>
    public bool OpenTcp { get; init; }
    /// <summary>--ext-unix-sk.</summary>
    public bool ExternalUnixSockets { get; init; }
    /// <summary>--shell-job.</summary>
    public bool Terminal { get; init; }
    /// <summary>--file-locks.</summary>
    public bool FileLocks { get; init; }
    /// <summary>--empty-ns, one per entry.</summary>
    public IReadOnlyList<string> EmptyNamespaces { get; init; } = [];
    /// <summary>Image path of the options (the request's path wins, as in the Go shim).</summary>
    public string ImagePath { get; init; } = "";
    /// <summary>CRIU work dir; kept after the dump when given.</summary>
    public string WorkPath { get; init; } = "";
    /// <summary>Parent image for an incremental dump (containerd 2.4+).</summary>
    public string ParentPath { get; init; } = "";

    /// <summary>
    /// Decodes containerd.runc.v1.CheckpointOptions, or the legacy containerd.linux.runc.CheckpointOptions
    /// (whose image_path and work_path carry swapped field numbers); none at all means defaults.
    /// cgroups_mode is ignored, as by the Go shim.
    /// </summary>
    public static CheckpointRequestOptions Decode(Any? any)
    {
        if (any is null || (any.TypeUrl.Length == 0 && any.Value.IsEmpty))
        {
            return new CheckpointRequestOptions();
        }
        try
        {
            return TypeUrls.NameOf(any.TypeUrl) switch
            {
                "containerd.runc.v1.CheckpointOptions" => From(Containerd.Runc.V1.CheckpointOptions.Parser.ParseFrom(any.Value)),
                "containerd.linux.runc.CheckpointOptions" => From(Containerd.Linux.Runc.CheckpointOptions.Parser.ParseFrom(any.Value)),
                _ => throw new ShimException(ErrorKind.InvalidArgument, $"checkpoint options of type {any.TypeUrl} are not supported"),
            };
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"malformed checkpoint options of type {any.TypeUrl}: {ex.Message}", ex);
        }
    }

    private static CheckpointRequestOptions From(Containerd.Runc.V1.CheckpointOptions o) => new()
    {
        Exit = o.Exit,
        OpenTcp = o.OpenTcp,
        ExternalUnixSockets = o.ExternalUnixSockets,
        Terminal = o.Terminal,
        FileLocks = o.FileLocks,
        EmptyNamespaces = [.. o.EmptyNamespaces],
        ImagePath = o.ImagePath,
        WorkPath = o.WorkPath,
        ParentPath = o.ParentPath,
    };

    private static CheckpointRequestOptions From(Containerd.Linux.Runc.CheckpointOptions o) => new()
    {
        Exit = o.Exit,
        OpenTcp = o.OpenTcp,
        ExternalUnixSockets = o.ExternalUnixSockets,
        Terminal = o.Terminal,
        FileLocks = o.FileLocks,
        EmptyNamespaces = [.. o.EmptyNamespaces],
        ImagePath = o.ImagePath,
        WorkPath = o.WorkPath,
    };
}
