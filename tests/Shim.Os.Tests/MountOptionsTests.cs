using Shim.Os.Interop;

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
}
