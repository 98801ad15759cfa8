using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Os;

namespace Shim.Core.Options;

/// <summary>Reads runtime options from containerd's Any and keeps them in the bundle as JSON.</summary>
public static class OptionsCodec
{
    /// <summary>
    /// Decodes the options Any of Create (or of <c>start</c>'s stdin). Besides containerd.runc.v1.Options,
    /// the legacy containerd.linux.runc types that clients still send for runtimes they do not know
    /// as runc are mapped instead of rejected.
    /// </summary>
    public static RuntimeOptions Decode(Any? any) =>
        AnyOptions.Decode(any, "runtime options", static (name, value) => name switch
        {
            "containerd.runc.v1.Options" => From(Containerd.Runc.V1.Options.Parser.ParseFrom(value)),
            "containerd.linux.runc.CreateOptions" => From(Containerd.Linux.Runc.CreateOptions.Parser.ParseFrom(value)),
            "containerd.linux.runc.RuncOptions" => From(Containerd.Linux.Runc.RuncOptions.Parser.ParseFrom(value)),
            "runtimeoptions.v1.Options" => From(Runtimeoptions.V1.Options.Parser.ParseFrom(value)),
            _ => null,
        });

    private static RuntimeOptions From(Containerd.Runc.V1.Options o) => new()
    {
        BinaryName = o.BinaryName,
        Root = o.Root,
        SystemdCgroup = o.SystemdCgroup,
        NoPivotRoot = o.NoPivotRoot,
        NoNewKeyring = o.NoNewKeyring,
        IoUid = o.IoUid,
        IoGid = o.IoGid,
        ShimCgroup = o.ShimCgroup,
        CriuWorkPath = o.CriuWorkPath,
    };

    private static RuntimeOptions From(Containerd.Linux.Runc.CreateOptions o) => new()
    {
        NoPivotRoot = o.NoPivotRoot,
        NoNewKeyring = o.NoNewKeyring,
        IoUid = o.IoUid,
        IoGid = o.IoGid,
        ShimCgroup = o.ShimCgroup,
        CriuWorkPath = o.CriuWorkPath,
    };

    /// <summary>The most a runtime options file (CRI's ConfigPath) may hold; a real one is a few hundred bytes.</summary>
    internal const int MaxConfigFileBytes = 1 << 20;

    /// <summary>
    /// Reads CRI's ConfigPath: a regular file of at most <see cref="MaxConfigFileBytes"/>, opened
    /// without blocking, so /dev/zero, a FIFO or a device is refused at once instead of growing the
    /// shim until it dies or waiting for ever.
    /// </summary>
    private static string ReadConfigFile(string path)
    {
        SafeFileHandle fd;
        try
        {
            fd = Fds.Open(path, Fds.O_RDONLY | Fds.O_NONBLOCK | Fds.O_CLOEXEC | Fds.O_NOCTTY);
        }
        catch (ErrnoException ex)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"reading runtime options file {path} failed: {ex.Reason}", ex);
        }
        using (fd)
        {
            if (!Fds.IsRegularFile(fd))
            {
                throw new ShimException(ErrorKind.InvalidArgument, $"reading runtime options file {path} failed: not a regular file");
            }
            using var stream = new FileStream(fd, FileAccess.Read, bufferSize: 0);
            var buffer = new byte[MaxConfigFileBytes + 1];
            int total = 0, n;
            while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0)
            {
                total += n;
            }
            if (total > MaxConfigFileBytes)
            {
                throw new ShimException(ErrorKind.InvalidArgument, $"reading runtime options file {path} failed: larger than {MaxConfigFileBytes / 1024 / 1024} MiB");
            }
            return Encoding.UTF8.GetString(buffer, 0, total);
        }
    }

    // CRI sends this for a handler whose runtime_type is not runc's own but has an [options] table
    private static RuntimeOptions From(Runtimeoptions.V1.Options o)
    {
        if (o.ConfigBody.Length > 0)
        {
            return CriOptionsToml.Parse(o.ConfigBody.ToStringUtf8(), "config_body");
        }
        if (o.ConfigPath.Length > 0)
        {
            return CriOptionsToml.Parse(ReadConfigFile(o.ConfigPath), o.ConfigPath);
        }
        return new RuntimeOptions();
    }

    private static RuntimeOptions From(Containerd.Linux.Runc.RuncOptions o) => new()
    {
        BinaryName = o.Runtime,
        Root = o.RuntimeRoot,
        SystemdCgroup = o.SystemdCgroup,
    };

    /// <summary>The JSON kept in the bundle's options.json for the <c>delete</c> action.</summary>
    public static byte[] ToJson(RuntimeOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("binary_name", o.BinaryName);
            w.WriteString("root", o.Root);
            w.WriteBoolean("systemd_cgroup", o.SystemdCgroup);
            w.WriteBoolean("no_pivot_root", o.NoPivotRoot);
            w.WriteBoolean("no_new_keyring", o.NoNewKeyring);
            w.WriteNumber("io_uid", o.IoUid);
            w.WriteNumber("io_gid", o.IoGid);
            w.WriteString("shim_cgroup", o.ShimCgroup);
            w.WriteString("criu_work_path", o.CriuWorkPath);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>
    /// Reads options.json back; unknown or missing fields keep their defaults, and so does what
    /// follows the first broken byte of a damaged file: the delete action must still clean up
    /// (it threw JsonException before, and delete failed; found by fuzz/run.sh bundle-files).
    /// </summary>
    public static RuntimeOptions FromJson(ReadOnlySpan<byte> json)
    {
        var o = new RuntimeOptions();
        try
        {
            ReadJson(json, ref o);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // keep what was read before the damage
        }
        return o;
    }

    private static void ReadJson(ReadOnlySpan<byte> json, ref RuntimeOptions o)
    {
        var reader = new Utf8JsonReader(json);
        string? key = null;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    key = reader.GetString();
                    break;
                case JsonTokenType.String:
                    string s = reader.GetString() ?? "";
                    o = key switch
                    {
                        "binary_name" => o with { BinaryName = s },
                        "root" => o with { Root = s },
                        "shim_cgroup" => o with { ShimCgroup = s },
                        "criu_work_path" => o with { CriuWorkPath = s },
                        _ => o,
                    };
                    break;
                case JsonTokenType.True or JsonTokenType.False:
                    bool b = reader.GetBoolean();
                    o = key switch
                    {
                        "systemd_cgroup" => o with { SystemdCgroup = b },
                        "no_pivot_root" => o with { NoPivotRoot = b },
                        "no_new_keyring" => o with { NoNewKeyring = b },
                        _ => o,
                    };
                    break;
                case JsonTokenType.Number when reader.TryGetUInt32(out uint n):
                    o = key switch
                    {
                        "io_uid" => o with { IoUid = n },
                        "io_gid" => o with { IoGid = n },
                        _ => o,
                    };
                    break;
            }
        }
    }

    /// <summary>Resolves the runtime binary (BinaryName, "runc" when empty): a name with a slash as a path, else the first match on PATH.</summary>
    public static string ResolveBinary(string binaryName)
    {
        ArgumentNullException.ThrowIfNull(binaryName);
        string name = binaryName.Length > 0 ? binaryName : "runc";
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            // Path.GetFullPath throws ArgumentException on it (an UNKNOWN status before)
            throw new ShimException(ErrorKind.InvalidArgument, $"runtime binary name \"{name}\" contains a NUL byte");
        }
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return Path.GetFullPath(name);
        }
        string path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var dir in path.Split(':'))
        {
            if (dir.Length == 0)
            {
                continue;
            }
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new ShimException(ErrorKind.FailedPrecondition, $"runtime binary {name} not found in PATH ({path})");
    }

    internal static string Utf8(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);
}
