using Shim.Os.Interop;
using Shim.Os.Mounting;

namespace Shim.Os.Tests;

public sealed class MountOptionsTests
{
    public static TheoryData<string[], ulong, ulong, string> Cases => new()
    {
        { [], 0, 0, "" },
        { ["ro"], Libc.MS_RDONLY, 0, "" },
        { ["ro", "rw"], 0, 0, "" },
        { ["bind", "ro"], Libc.MS_BIND | Libc.MS_RDONLY, 0, "" },
        { ["rbind", "rprivate"], Libc.MS_BIND | Libc.MS_REC, Libc.MS_PRIVATE | Libc.MS_REC, "" },
        { ["nosuid", "noexec", "nodev", "relatime"], Libc.MS_NOSUID | Libc.MS_NOEXEC | Libc.MS_NODEV | Libc.MS_RELATIME, 0, "" },
        { ["nosuid", "suid"], 0, 0, "" },
        { ["remount", "ro"], Libc.MS_REMOUNT | Libc.MS_RDONLY, 0, "" },
        { ["private", "shared", "rslave"], 0, Libc.MS_PRIVATE | Libc.MS_SHARED | Libc.MS_SLAVE | Libc.MS_REC, "" },
        { ["defaults", "size=64m", "mode=1777"], 0, 0, "size=64m,mode=1777" },
        {
            ["index=off", "lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "ro"],
            Libc.MS_RDONLY, 0, "index=off,lowerdir=/a:/b,upperdir=/u,workdir=/w"
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Options_split_into_flags_propagation_and_data(string[] options, ulong flags, ulong propagation, string data)
    {
        Assert.Equal(new MountOptions(flags, propagation, data), MountOptions.Parse(options));
    }

    [Fact]
    public void A_read_only_bind_is_recognised()
    {
        var parsed = MountOptions.Parse(["rbind", "ro"]);
        Assert.True(parsed.IsBind);
        Assert.True(parsed.IsReadOnly);
        Assert.False(parsed.IsRemount);
    }

    [Fact]
    public void Loop_and_its_direct_io_are_taken_out_of_the_data()
    {
        var parsed = MountOptions.Parse(["loop", "ro", "direct-io", "errors=remount-ro"]);
        Assert.True(parsed.Loop);
        Assert.True(parsed.LoopDirectIo);
        Assert.Equal("errors=remount-ro", parsed.Data);
        Assert.Equal(Libc.MS_RDONLY, parsed.Flags);
    }

    [Fact]
    public void Direct_io_without_loop_stays_a_file_system_option()
    {
        var parsed = MountOptions.Parse(["direct-io"]);
        Assert.False(parsed.Loop);
        Assert.Equal("direct-io", parsed.Data);
    }

    [Fact]
    public void X_containerd_options_never_reach_the_kernel()
    {
        var parsed = MountOptions.Parse(["X-containerd.mkdir.path=/x:0755", "ro", "X-containerd.custom=1", "index=off"]);
        Assert.Equal(new MountOptions(Libc.MS_RDONLY, 0, "index=off"), parsed);
    }

    [Fact]
    public void Uidmap_and_gidmap_are_the_shims_not_the_kernels()
    {
        var parsed = MountOptions.Parse(["lowerdir=/a:/b", "uidmap=0:200000:65536", "gidmap=0:300000:65536"]);
        Assert.Equal("0:200000:65536", parsed.UidMap);
        Assert.Equal("0:300000:65536", parsed.GidMap);
        Assert.True(parsed.IsIdMapped);
        Assert.Equal("lowerdir=/a:/b", parsed.Data);
    }

    [Theory]
    [InlineData("uidmap", "\"uidmap\" needs a value")]
    [InlineData("gidmap=", "\"gidmap=\" needs a value")]
    public void An_idmap_option_without_a_value_is_refused_by_name(string option, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => MountOptions.Parse(["ro", option]));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_uidmap_without_a_gidmap_is_refused()
    {
        var ex = Assert.Throws<FormatException>(() => MountOptions.Parse(["uidmap=0:1000:1"]));
        Assert.Contains("\"uidmap=0:1000:1\" needs its counterpart (gidmap=)", ex.Message, StringComparison.Ordinal);
    }
}
