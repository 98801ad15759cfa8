using Google.Protobuf;
using System.Text;
using CsCheck;
using Shim.Ttrpc.Fuzz.Targets;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>
/// Inputs for the byte targets: their seeds mutated, random bytes, and per target a grammar that
/// reaches past the first syntax check (TOML tables and nesting, stdio URIs, mount options with id
/// maps and lowerdirs, JSON with bad escapes and invalid UTF-8).
/// </summary>
internal static class ParserGen
{
    /// <summary>Text that breaks parsers: escapes, lone surrogates, invalid UTF-8 (as bytes), separators.</summary>
    private static readonly Gen<string> Nasty = Gen.OneOfConst(
        "", " ", "\\", "\\ud800", "\\udc00x", "\\u0000", "%", "%zz", "%2F", "%00", "..", "/", ":", "::", ",", "=", "==", "?", "#", "&", "[", "]", "{", "}",
        "\"", "'", "\n", "\r\n", "\t", "\0", "-", "--", "max", "-1", "18446744073709551616", "4294967296", "99999999999999999999", "é", "\u2028", "😀");

    internal static readonly Gen<string> Word = Gen.Frequency(
        (6, Gen.Char.AlphaNumeric.Array[1, 10].Select(c => new string(c))),
        (3, Nasty),
        (1, Gen.Char.Array[0, 12].Select(c => new string(c))));

    /// <summary>The seeds of <paramref name="target"/>, mutated or not, random bytes, and its grammar when it has one.</summary>
    public static Gen<byte[]> For(string target)
    {
        var seeds = FuzzTargets.SeedsOf(target).Select(s => s.Bytes).ToArray();
        var seed = Gen.OneOfConst(seeds);
        var list = new List<(int, Gen<byte[]>)>
        {
            (3, seed),
            (12, Gen.Select(seed, FrameGen.Mutations.Array[1, 6], Mutation.ApplyAll)),
            (2, Gen.Byte.Array[0, 96]),
        };
        if (Grammar(target) is { } grammar)
        {
            list.Add((12, grammar));
            list.Add((4, Gen.Select(grammar, FrameGen.Mutations.Array[1, 3], Mutation.ApplyAll)));
        }
        return Gen.Frequency([.. list]);
    }

    private static Gen<byte[]>? Grammar(string target) => target switch
    {
        "config-toml" => Gen.Select(Gen.Byte, Toml, (b, t) => (byte[])[b, .. Encoding.UTF8.GetBytes(t)]),
        "runtime-options" => Gen.Select(Toml, t => (byte[])[4, .. new Runtimeoptions.V1.Options { ConfigBody = Google.Protobuf.ByteString.CopyFromUtf8(t) }.ToByteArray()]),
        "stdio-uri" => Gen.Select(Gen.Byte, StdioLine.Array[1, 3], (b, uris) => (byte[])[b, .. Encoding.UTF8.GetBytes(string.Join('\n', uris))]),
        "mount-options" => MountLines.Select(Encoding.UTF8.GetBytes),
        "exec-spec" => Gen.Select(Gen.Byte, Json, (b, j) => (byte[])[b, .. j]),
        "runc-log" => Json.Array[1, 6].Select(lines => lines.SelectMany(l => (byte[])[.. l, (byte)'\n']).ToArray()),
        "bundle-files" => Gen.Select(Gen.Int[0, 3], Json, (which, j) => (byte[])[(byte)which, .. j]),
        "shim-args" => ShimArgv.Select(Encoding.UTF8.GetBytes),
        "mountinfo" => MountInfoText.Select(Encoding.UTF8.GetBytes),
        "cgroup-files" => CgroupText.Select(Encoding.UTF8.GetBytes),
        _ => null,
    };

    // ---- TOML ----

    private static readonly Gen<string> TomlKey = Gen.Frequency(
        (6, Gen.OneOfConst("BinaryName", "binary_name", "Root", "SystemdCgroup", "systemd_cgroup", "NoPivotRoot", "NoNewKeyring", "IoUid", "io_uid", "IoGid", "ShimCgroup", "CriuWorkPath", "\"BinaryName\"", "'Root'", "a.b", "\"\"")),
        (2, Word));

    private static readonly Gen<string> TomlScalar = Gen.Frequency(
        (3, Word.Select(w => "\"" + w + "\"")),
        (1, Word.Select(w => "'" + w + "'")),
        (1, Word.Select(w => "\"\"\"" + w + "\"\"\"")),
        (2, Gen.OneOfConst("true", "false", "0", "-1", "4294967295", "4294967296", "-9223372036854775808", "9223372036854775807", "99999999999999999999", "0x7f", "0o17", "0b1", "1_000", "1.5", "inf", "nan", "-0.0", "1e400", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27")),
        (1, Word));

    private static readonly Gen<string> TomlValue = Gen.Frequency(
        (6, TomlScalar),
        (1, Gen.Select(Gen.Int[1, 200], TomlScalar, (depth, v) => new string('[', depth) + v + new string(']', depth))),
        (1, Gen.Select(Gen.Int[1, 200], TomlScalar, (depth, v) => string.Concat(Enumerable.Repeat("{ x = ", depth)) + v + new string('}', depth))),
        (1, TomlScalar.Array[0, 4].Select(vs => "[" + string.Join(", ", vs) + "]")));

    private static readonly Gen<string> TomlLine = Gen.Frequency(
        (8, Gen.Select(TomlKey, TomlValue, (k, v) => $"{k} = {v}")),
        (1, Word.Select(w => $"[{w}]")),
        (1, Word.Select(w => $"[[{w}]]")),
        (1, Word.Select(w => "# " + w)),
        (1, Word));

    internal static readonly Gen<string> Toml = TomlLine.Array[0, 8].Select(lines => string.Join('\n', lines));

    // ---- stdio URIs ----

    private static readonly Gen<string> StdioLine = Gen.Select(
        Gen.OneOfConst("", "", "fifo://", "file://", "binary://", "binary-v2://", "FILE://", "a://", "://", "x y://", "http://", "file:", "binary:", "file:///", "binary:////"),
        Gen.OneOfConst("/run/containerd/fifo/1/c-stdout", "/var/log/c.log", "/usr/bin/logger", "host/x", "[::1]/x", "a b", "%2Fetc", "/x%00y", "/😀", ""),
        Gen.Frequency((3, Gen.Const("")), (2, Gen.Select(Word, Word, (k, v) => $"?{k}={v}")), (1, Word.Array[1, 4].Select(ws => "?" + string.Join('&', ws))), (1, Word.Select(w => "#" + w))),
        (scheme, path, query) => scheme + path + query);

    // ---- mounts ----

    private static readonly Gen<string> MapEntry = Gen.Frequency(
        (4, Gen.Select(Gen.UInt, Gen.UInt, Gen.UInt[0, 70000], (c, h, n) => $"{c % 100000}:{h % 100000}:{n}")),
        (1, Gen.Select(Gen.UInt, Gen.UInt, Gen.UInt, (c, h, n) => $"{c}:{h}:{n}")),
        (1, Word));

    internal static readonly Gen<string> MountOption = Gen.Frequency(
        (6, Gen.OneOfConst("ro", "rw", "bind", "rbind", "remount", "nosuid", "nodev", "noexec", "private", "rprivate", "rshared", "slave", "unbindable", "defaults", "sync", "relatime", "loop", "direct-io", "X-containerd.mkdir.path=/x", "index=off", "userxattr", "size=64k", "mode=755", "uidmap", "gidmap=", "")),
        (3, MapEntry.Array[1, 3].Select(es => "uidmap=" + string.Join(',', es))),
        (3, MapEntry.Array[1, 3].Select(es => "gidmap=" + string.Join(',', es))),
        (3, Gen.Select(Gen.Int[0, 300], Word, (n, w) => "lowerdir=" + string.Join(':', Enumerable.Range(0, n).Select(i => $"/var/lib/s/{i}/{w}")))),
        (1, Word.Array[1, 4].Select(ws => "lowerdir=" + string.Join(':', ws))),
        (1, Word));

    internal static readonly Gen<string> MountTargetText = Gen.Frequency(
        (3, Gen.OneOfConst("", "/", ".", "..", "../x", "a/../..", "/a/./b", "a//b/", "./..", "x/../../y", "a\0b")),
        (2, Word.Array[1, 5].Select(ws => string.Join('/', ws))));

    private static readonly Gen<string> MountLines = Gen.Select(
        Gen.OneOfConst("overlay", "bind", "tmpfs", "ext4", "proc", "none", ""), Word, MountTargetText, MountOption.Array[0, 8],
        (type, source, target, options) => string.Join('\n', [type, source, target, .. options]));

    // ---- JSON (process specs, runc log lines, bundle files) ----

    private static readonly Gen<string> JsonString = Gen.Frequency(
        (5, Word.Select(w => "\"" + w.Replace("\"", "", StringComparison.Ordinal).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "\"")),
        (2, Gen.OneOfConst("\"\\ud800\"", "\"\\udc00\"", "\"\\ud83d\\ude00\"", "\"\\u0000\"", "\"\\x\"", "\"unterminated", "\"\\uD800\\u0041\"")));

    private static readonly Gen<string> JsonScalar = Gen.Frequency(
        (4, JsonString), (2, Gen.OneOfConst("true", "false", "null", "0", "-1", "1e999", "4294967296", "-0", "01", "NaN")));

    private static readonly Gen<string> JsonKey = Gen.Frequency(
        (3, Gen.OneOfConst("\"terminal\"", "\"args\"", "\"cwd\"", "\"level\"", "\"msg\"", "\"linux\"", "\"namespaces\"", "\"type\"", "\"path\"", "\"binary_name\"", "\"io_uid\"", "\"systemd_cgroup\"", "\"root\"")),
        (1, JsonString));

    private static readonly Gen<string> JsonValue = Gen.Frequency(
        (6, JsonScalar),
        (1, Gen.Select(Gen.Int[1, 80], JsonScalar, (d, v) => new string('[', d) + v + new string(']', d))),
        (1, Gen.Select(JsonKey, JsonScalar, Gen.OneOfConst("pid", "mount", "network"), (k, v, t) => $"{{\"namespaces\":[{{\"type\":\"{t}\",\"path\":{v}}},{{{k}:{v}}}]}}")),
        (1, JsonScalar.Array[0, 4].Select(vs => "[" + string.Join(",", vs) + "]")));

    internal static readonly Gen<byte[]> Json = Gen.Select(
        Gen.Select(JsonKey, JsonValue, (k, v) => $"{k}:{v}").Array[0, 6],
        Gen.Frequency((8, Gen.Const<byte[]>([])), (1, Gen.OneOfConst<byte[]>([0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]))),
        Gen.Int[0, 100],
        (members, bad, at) =>
        {
            byte[] text = Encoding.UTF8.GetBytes("{" + string.Join(",", members) + "}");
            int i = text.Length == 0 ? 0 : at % text.Length;
            return (byte[])[.. text.AsSpan(0, i), .. bad, .. text.AsSpan(i)];
        });

    // ---- command lines, mountinfo, cgroup files ----

    private static readonly Gen<string> ShimArgv = Gen.Frequency(
        (4, Gen.OneOfConst("-namespace", "--namespace", "-id", "-address", "-publish-binary", "-bundle", "-socket", "-debug-socket", "-debug", "-v", "-version", "-info", "-debug=false", "-id=", "--", "-", "start", "delete", "-x")),
        (2, Word)).Array[0, 8].Select(args => string.Join('\0', args));

    private static readonly Gen<string> MountInfoText = Gen.Select(
        Gen.Int[0, 999], Gen.Int[0, 999], Gen.Frequency((3, Gen.OneOfConst("/", "/run/containerd/x", "/a\\040b", "/a\\134", "/a\\", "/a\\12", "/a\\777\\400", "")), (1, Word)), Word,
        (id, parent, point, rest) => $"{id} {parent} 0:1 / {point} rw - {rest} x rw").Array[0, 6].Select(lines => string.Join('\n', lines));

    private static readonly Gen<string> CgroupLine = Gen.Frequency(
        (3, Gen.Select(Gen.OneOfConst("cache", "rss", "oom_kill", "usage_usec", "nr_periods", "user", "system", "some", "full", "8:0", "Total", "mlx4_0", "hugepages-2048kB", "hugepages-x"), Gen.OneOfConst("0", "1", "max", "-1", "18446744073709551615", "18446744073709551616", "avg10=1.5", "rbytes=1 wbytes=x", "hca_handle=max hca_object=1", "Read 4096", "Read", "x"),
            (k, v) => $"{k} {v}")),
        (1, Gen.Select(Gen.Int[0, 20], Gen.OneOfConst("", "memory", "cpu,cpuacct", "name=systemd", ",", "::"), Word, (id, c, p) => $"{id}:{c}:/{p}")),
        (1, Word));

    private static readonly Gen<string> CgroupText = Gen.Select(
        Gen.Select(Gen.Int[0, 20], Gen.OneOfConst("", "memory", "cpu,cpuacct", "pids", "blkio", "hugetlb", "rdma", "name=systemd"), (id, c) => $"{id}:{c}:/c").Array[1, 6],
        CgroupLine.Array[0, 5].Array[0, 20],
        (proc, files) => string.Join('\n', proc) + "\0" + string.Join('\0', files.Select(f => string.Join('\n', f))));
}
