using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Shim.Protos;

/// <summary>
/// Type URLs of the <see cref="Any"/> payloads exchanged with containerd, and helpers to build and
/// inspect them.
/// </summary>
/// <remarks>
/// <para>
/// containerd's Go <c>typeurl</c> package names protobuf messages by their bare full name
/// (<c>containerd.events.TaskExit</c>), never with the <c>type.googleapis.com/</c> prefix that
/// <see cref="Any.Pack(IMessage)"/> adds. Both containerd 1.6 (gogo) and 2.x accept and produce the bare
/// form, so everything we send goes through <see cref="Pack"/>.
/// </para>
/// <para>
/// JSON payloads (OCI runtime-spec structures) use registered URLs such as
/// <c>types.containerd.io/opencontainers/runtime-spec/1/Process</c>. Those contain slashes but the whole
/// string is the name; the usual "type name is whatever follows the last '/'" rule of protobuf (and of
/// <see cref="Any.GetTypeName(string)"/>) would wrongly reduce them to <c>Process</c>. Use
/// <see cref="NameOf"/> / <see cref="Is"/> instead of <see cref="Any.Is(Google.Protobuf.Reflection.MessageDescriptor)"/>
/// when comparing.
/// </para>
/// </remarks>
public static class TypeUrls
{
    // ---- events (containerd.events) ----
    public const string TaskCreate = "containerd.events.TaskCreate";
    public const string TaskStart = "containerd.events.TaskStart";
    public const string TaskDelete = "containerd.events.TaskDelete";
    public const string TaskExit = "containerd.events.TaskExit";
    public const string TaskOOM = "containerd.events.TaskOOM";
    public const string TaskExecAdded = "containerd.events.TaskExecAdded";
    public const string TaskExecStarted = "containerd.events.TaskExecStarted";
    public const string TaskPaused = "containerd.events.TaskPaused";
    public const string TaskResumed = "containerd.events.TaskResumed";
    public const string TaskCheckpointed = "containerd.events.TaskCheckpointed";

    // ---- runc shim options (containerd.runc.v1) ----
    public const string RuncOptions = "containerd.runc.v1.Options";
    public const string RuncCheckpointOptions = "containerd.runc.v1.CheckpointOptions";
    public const string RuncProcessDetails = "containerd.runc.v1.ProcessDetails";

    // ---- legacy 1.x runctypes (containerd.linux.runc) ----
    public const string LegacyRuncOptions = "containerd.linux.runc.RuncOptions";
    public const string LegacyCreateOptions = "containerd.linux.runc.CreateOptions";
    public const string LegacyCheckpointOptions = "containerd.linux.runc.CheckpointOptions";
    public const string LegacyProcessDetails = "containerd.linux.runc.ProcessDetails";

    // ---- CRI runtime options wrapper ----
    public const string RuntimeOptions = "runtimeoptions.v1.Options";

    // ---- CRI's pod config, the options of containerd 2.x's sandbox calls ----
    public const string PodSandboxConfig = "runtime.v1.PodSandboxConfig";

    // ---- cgroup metrics (Stats) ----
    public const string CgroupsV1Metrics = "io.containerd.cgroups.v1.Metrics";
    public const string CgroupsV2Metrics = "io.containerd.cgroups.v2.Metrics";

    // ---- OCI runtime-spec JSON payloads (value = JSON bytes; URL kept whole) ----
    public const string OciProcess = "types.containerd.io/opencontainers/runtime-spec/1/Process";
    public const string OciLinuxResources = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
    public const string OciFeatures = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

    /// <summary>The prefix added by protobuf's own <c>Any.Pack</c>; never sent by us.</summary>
    public const string GooglePrefix = "type.googleapis.com/";

    /// <summary>
    /// Wraps <paramref name="message"/> in an <see cref="Any"/> whose type URL is the bare full name of
    /// the message (<c>message.Descriptor.FullName</c>, no prefix, no leading '/'), as containerd does.
    /// </summary>
    public static Any Pack(IMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new Any
        {
            TypeUrl = NameOf(message),
            Value = message.ToByteString(),
        };
    }

    /// <summary>
    /// The full protobuf name of <paramref name="message"/>'s type. The types the shim packs are named
    /// from constants: a message's <c>Descriptor</c> builds the descriptors of its whole .proto file and
    /// every file it imports on first use, objects a shim would otherwise keep in its heap for its whole
    /// life for the sake of one string (tests/Shim.Core.Tests check the constants against the descriptors).
    /// </summary>
    public static string NameOf(IMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return EventTopics.Describe(message)?.Name ?? message switch
        {
            global::Containerd.Runc.V1.ProcessDetails => RuncProcessDetails,
            global::Containerd.Cgroups.V1.Stats.Metrics => CgroupsV1Metrics,
            global::Containerd.Cgroups.V2.Stats.Metrics => CgroupsV2Metrics,
            _ => message.Descriptor.FullName,
        };
    }

    /// <summary>
    /// Wraps raw bytes (e.g. a JSON document) in an <see cref="Any"/> with the given type URL, which is
    /// used verbatim.
    /// </summary>
    public static Any PackRaw(string typeUrl, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(typeUrl);
        return new Any { TypeUrl = typeUrl, Value = ByteString.CopyFrom(value) };
    }

    /// <summary>
    /// Normalises a type URL to the name containerd compares against.
    /// </summary>
    /// <remarks>
    /// Rule:
    /// <list type="bullet">
    /// <item><c>type.googleapis.com/pkg.Msg</c> → <c>pkg.Msg</c> (everything up to the last '/' is
    /// dropped, as in protobuf's own convention);</item>
    /// <item><c>/pkg.Msg</c> (a bare name with a single leading slash) → <c>pkg.Msg</c>;</item>
    /// <item>anything else is returned unchanged, in particular containerd's registered JSON URLs such as
    /// <c>types.containerd.io/opencontainers/runtime-spec/1/Process</c>, whose slashes are part of the
    /// name.</item>
    /// </list>
    /// </remarks>
    public static string NameOf(string typeUrl)
    {
        ArgumentNullException.ThrowIfNull(typeUrl);
        if (typeUrl.StartsWith(GooglePrefix, StringComparison.Ordinal))
        {
            return typeUrl[(typeUrl.LastIndexOf('/') + 1)..];
        }

        if (typeUrl.Length > 1 && typeUrl[0] == '/' && typeUrl.IndexOf('/', 1) < 0)
        {
            return typeUrl[1..];
        }

        return typeUrl;
    }

    /// <summary>True when <paramref name="any"/> carries the type named <paramref name="typeUrl"/>
    /// (both sides normalised with <see cref="NameOf"/>).</summary>
    public static bool Is(Any? any, string typeUrl)
    {
        ArgumentNullException.ThrowIfNull(typeUrl);
        return any is not null && string.Equals(NameOf(any.TypeUrl), NameOf(typeUrl), StringComparison.Ordinal);
    }

    /// <summary>
    /// Decodes <paramref name="any"/> as <typeparamref name="T"/> when its type URL names
    /// <typeparamref name="T"/> (bare or <c>type.googleapis.com/</c> form). Returns false on a type
    /// mismatch; throws <see cref="InvalidProtocolBufferException"/> on malformed bytes.
    /// </summary>
    public static bool TryUnpack<T>(Any? any, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T? message)
        where T : class, IMessage<T>, new()
    {
        message = null;
        if (any is null)
        {
            return false;
        }

        var result = new T();
        if (!string.Equals(NameOf(any.TypeUrl), result.Descriptor.FullName, StringComparison.Ordinal))
        {
            return false;
        }

        result.MergeFrom(any.Value);
        message = result;
        return true;
    }
}
