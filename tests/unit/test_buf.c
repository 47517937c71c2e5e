/* test_buf.c - the capped buffer and the number format (against Python's
 * repr(float), which generated the expected strings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "infergate/buf.h"
#include "infergate/common.h"

static const struct {
    double v;
    const char *want;
} cases[] = {
    {0x0.0p+0, "0.0"},
    {-0x0.0p+0, "-0.0"},
    {0x1.0000000000000p+0, "1.0"},
    {0x1.8000000000000p+1, "3.0"},
    {0x1.4000000000000p+3, "10.0"},
    {0x1.9000000000000p+6, "100.0"},
    {0x1.f400000000000p+7, "250.0"},
    {0x1.c200000000000p+9, "900.0"},
    {0x1.e848000000000p+19, "1000000.0"},
    {0x1.999999999999ap-4, "0.1"},
    {0x1.0000000000000p-2, "0.25"},
    {0x1.5555555555555p-2, "0.3333333333333333"},
    {0x1.5555555555555p-1, "0.6666666666666666"},
    {-0x1.8000000000000p+0, "-1.5"},
    {0x1.a36e2eb1c432dp-14, "0.0001"},
    {0x1.f75104d551d69p-17, "1.5e-05"},
    {0x1.a36371ea531a8p-14, "9.999e-05"},
    {0x1.c6bf526340000p+49, "1000000000000000.0"},
    {0x1.1c37937e08000p+53, "1e+16"},
    {0x1.5ee2a2eb5a5c4p+53, "1.2345678901234568e+16"},
    {0x1.c12218377de66p+46, "123456789012345.6"},
    {0x1.7e43c8800759cp+996, "1e+300"},
    {-0x1.56e1fc2f8f359p-997, "-1e-300"},
    {0x0.0000000000001p-1022, "5e-324"},
    {0x1.fffffffffffffp+1023, "1.7976931348623157e+308"},
    {0x1.3333333333334p-2, "0.30000000000000004"},
    {0x1.0000000000000p+4, "16.0"},
    {0x1.0c6f7a0b5ed8dp-22, "2.5e-07"},
    {0x1.fe185ca57c517p+78, "6.02214076e+23"},
    {0x1.f75104d551d69p-16, "3e-05"},
    {0x1.81cd6c8b43958p+13, "12345.678"},
    {0x1.9d37952e6b438p-53, "1.7920435971799646e-16"},
    {-0x1.5d269c89a5a60p+9, "-698.3016521509962"},
    {0x1.71ff4a6a3a450p-974, "9.051962159641863e-294"},
    {-0x1.ab904f8457392p+9, "-855.1274266649145"},
    {0x1.63a04892f902bp-927, "1.2244687060864793e-279"},
    {-0x1.0c9f46484d916p+8, "-268.622166174829"},
    {0x1.897650ed90475p-92, "3.1038692546051638e-28"},
    {0x1.dbe30d7595e00p+3, "14.871466378840523"},
    {0x1.028d6099950d8p-935, "3.47746221006508e-282"},
    {-0x1.096ad1e6e9f70p+7, "-132.70863267522827"},
    {0x1.705c911e20b8fp-777, "1.8102049238712094e-234"},
    {-0x1.994977f51e7cfp+9, "-818.5739733122699"},
    {0x1.8776d6cad4a26p-963, "1.9614004842990944e-290"},
    {0x1.46da24d7ae84ap+9, "653.7042493440761"},
    {0x1.304171fb17c23p-53, "1.3194985271925108e-16"},
    {-0x1.14c2d3372bf8ap+9, "-553.522070785971"},
    {0x1.fd23ca09f76b5p-427, "5.7383751242870525e-129"},
    {0x1.bfb57d40bb95cp+9, "895.4178849140112"},
    {0x1.982bd93bd04cfp-424, "3.6803093092722886e-128"},
    {-0x1.9d4731a734918p+7, "-206.63905069843963"},
    {0x1.63464f9ebdaccp-797, "1.665013325847512e-240"},
    {-0x1.c56ad5716ab94p+9, "-906.8346387644874"},
    {0x1.5efabdbc496cbp-887, "1.3287264468909314e-267"},
    {-0x1.a4c80b9f3719ep+8, "-420.7814273366474"},
    {0x1.a98fb24ede6a4p-470, "5.452858328033165e-142"},
    {-0x1.7e352fe2a2c31p+9, "-764.4155238432633"},
    {0x1.b41564ef8aa38p-450, "5.859110810511135e-136"},
    {0x1.3c20591240162p+9, "632.2527182400629"},
    {0x1.876f82e44158bp-918, "6.900559837717644e-277"},
    {0x1.4666914d9a290p+7, "163.20032732493246"},
    {0x1.61431a38fd547p-831, "9.63675255020271e-251"},
    {-0x1.fe68ea8f48e30p+7, "-255.20491454853754"},
    {0x1.339088c38fb29p-294, "3.774658258676387e-89"},
    {-0x1.b53605bc7436fp+9, "-874.4220500533537"},
    {0x1.dda6c0f4205b4p-390, "7.398995516149518e-118"},
    {-0x1.260a91cbf2bc9p+9, "-588.0825743613469"},
    {0x1.7b458ae2eb154p-479, "9.491666999059608e-145"},
    {-0x1.21a17a9f62b78p+7, "-144.81538866119422"},
    {0x1.c6bc4506bf2efp-547, "3.855770690393894e-165"},
    {0x1.563f5925b87f0p+7, "171.12372701527738"},
    {0x1.42a567403e430p-653, "3.372091069992867e-197"},
    {-0x1.90774c2fe4b30p+8, "-400.46600627263524"},
    {0x1.14c66cb5c7427p-839, "2.949311764146863e-253"},
    {0x1.8dfd266af5188p+8, "397.9888674591425"},
    {0x1.d1ccf3e7d1bfbp-940, "1.9577811878248828e-283"},
    {0x1.29b1e11a1fe30p+7, "148.84742051734202"},
    {0x1.ffc8186734721p-517, "4.6594747553044564e-156"},
    {0x1.772332e8ef38cp+9, "750.2749911468577"},
    {0x1.9b30ebabced20p-564, "2.6600278403749228e-170"},
    {-0x1.a81fdd47c29fap+8, "-424.1244702196269"},
    {0x1.f52b3faecbd38p-949, "4.114132719673166e-286"},
    {-0x1.7def292802266p+9, "-763.8684434900758"},
    {0x1.ebd356b0a18e8p-855, "7.996958104732309e-258"},
    {0x1.012413f5c1c92p+9, "514.2818591304988"},
    {0x1.ab2f826e87555p-68, "5.653754128494313e-21"},
    {-0x1.612e47e934e40p+4, "-22.073799048388764"},
    {0x1.1b87d0a097c97p-38, "4.0292111286562544e-12"},
    {0x1.506e84bf67b60p+8, "336.4317130687905"},
    {0x1.7835ec3baea9ep-452, "1.2636682211006762e-136"},
    {0x1.241a90168c0d8p+7, "146.05188055476788"},
    {0x1.fe6b2e01f5057p-186, "2.0328596392404466e-56"},
    {-0x1.748145fef82b4p+8, "-372.5049743038064"},
    {0x1.9529eb1fee08fp-665, "1.0338165819524026e-200"},
    {0x1.797ac110565f8p+7, "188.73975421003684"},
    {0x1.047379474031bp-207, "4.94626154618407e-63"},
    {-0x1.5e5b7b433cb00p+6, "-87.58933739717395"},
    {0x1.d7a0dd70820fep-928, "8.119400950294612e-280"},
    {0x1.bcae5c3fbe0e8p+9, "889.3621902158748"},
    {0x1.c5651795e8229p-310, "8.490592564702751e-94"},
    {0x1.484dede03fff8p+8, "328.30441094934895"},
    {0x1.b50830f88080bp-275, "2.8120592177511765e-83"},
    {0x1.92fbea3766df4p+8, "402.98404260884786"},
    {0x1.d122ca5aa3c81p-432, "1.6382560046033703e-130"},
    {0x1.ed188f7d2796ep+9, "986.1918789332683"},
    {0x1.560dcd269a9a5p-567, "2.765967382622201e-171"},
    {-0x1.aecf166ad7d24p+8, "-430.80893581170153"},
    {0x1.544a262c33a4fp-115, "3.2000684424314126e-35"},
    {0x1.514e30c6c0560p+8, "337.30543176837637"},
    {0x1.3960d05c6af07p-60, "1.0617665713948409e-18"},
    {-0x1.32700dbc89308p+6, "-76.60942740046823"},
};

/* ig_buf_grown_cap says exactly what ig_buf_reserve will allocate, so a
 * caller can charge a budget before the buffer grows. */
static void test_buf_grown_cap(void **state)
{
    struct ig_buf b;
    size_t want;

    (void)state;
    ig_buf_init(&b, 5000);
    for (size_t n = 0; n < 6000; n += 37) {
        want = ig_buf_grown_cap(&b, n);
        if (n > b.max - b.len) {
            assert_int_equal(want, 0);
            assert_int_equal(ig_buf_reserve(&b, n), IG_ERR_TOOBIG);
            continue;
        }
        assert_int_equal(ig_buf_reserve(&b, n), 0);
        assert_int_equal(b.cap, want);
        assert_int_equal(ig_buf_grown_cap(&b, n), b.cap); /* no growth now */
        assert_int_equal(ig_buf_append(&b, "x", 1), 0);
    }
    assert_int_equal(b.cap, 5001); /* capped at max + the NUL */
    ig_buf_clear(&b);
}

static void test_fmt_double_matches_python_repr(void **state)
{
    char out[IG_FMT_DOUBLE_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = ig_fmt_double(out, cases[i].v);

        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

static void test_fmt_double_nonfinite(void **state)
{
    char out[IG_FMT_DOUBLE_MAX];

    (void)state;
    ig_fmt_double(out, NAN);
    assert_string_equal(out, "NaN");
    ig_fmt_double(out, INFINITY);
    assert_string_equal(out, "Infinity");
    ig_fmt_double(out, -INFINITY);
    assert_string_equal(out, "-Infinity");
}

/* Python's repr of every power of two, every decade boundary and their
 * neighbours (data/gen_repr_table.py wrote the table), both signs, through
 * the fast path and through the printf reference. */
static const struct {
    uint64_t bits;
    const char *want;
} repr_table[] = {
#include "data/repr_table.h"
};

static void test_fmt_double_repr_table(void **state)
{
    char out[IG_FMT_DOUBLE_MAX], neg[IG_FMT_DOUBLE_MAX + 1];
    size_t bad = 0;

    (void)state;
    assert_true(IG_ARRAY_SIZE(repr_table) > 4000);
    for (size_t i = 0; i < IG_ARRAY_SIZE(repr_table); i++) {
        double v;

        memcpy(&v, &repr_table[i].bits, sizeof(v));
        snprintf(neg, sizeof(neg), "-%s", repr_table[i].want);
        ig_fmt_double(out, v);
        if (strcmp(out, repr_table[i].want) != 0 && bad++ < 20)
            print_error("%a: got %s, Python %s\n", v, out, repr_table[i].want);
        ig_fmt_double(out, -v);
        if (strcmp(out, neg) != 0 && bad++ < 20)
            print_error("%a: got %s, Python %s\n", -v, out, neg);
        ig_fmt_double_printf(out, v);
        if (strcmp(out, repr_table[i].want) != 0 && bad++ < 20)
            print_error("%a (printf path): got %s, Python %s\n", v, out, repr_table[i].want);
    }
    assert_int_equal(bad, 0);
}

/* splitmix64: a fixed, portable sequence. */
static uint64_t rnd(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The integer fast path agrees with the printf reference everywhere:
 * random bit patterns in and around its range, values just around powers
 * of ten, integers and short decimals. */
static void test_fmt_double_fast_path_matches_reference(void **state)
{
    char a[IG_FMT_DOUBLE_MAX], b[IG_FMT_DOUBLE_MAX];
    uint64_t seed = 42;

    (void)state;
    for (int i = 0; i < 300000; i++) {
        uint64_t r = rnd(&seed);
        double v;

        switch (i % 4) {
        case 0: /* any exponent from 1e-40 to 1e50, around the integer
                 * path's range */
            r = (r & 0x800fffffffffffffull) | ((uint64_t)(1023 - 133 + (r >> 52) % 300) << 52);
            memcpy(&v, &r, sizeof(v));
            break;
        case 1: /* next to a power of ten */
            v = pow(10, (int)(r % 18) - 3);
            r = rnd(&seed) % 7;
            for (uint64_t j = 0; j < r; j++)
                v = nextafter(v, (i & 8) ? 0 : INFINITY);
            break;
        case 2: /* short decimals */
            v = (double)(r % 100000000) / pow(10, (double)(r >> 60));
            break;
        default: /* model-like values */
            v = sqrt((double)(r % 100000000) + 0.5);
            break;
        }
        ig_fmt_double(a, v);
        ig_fmt_double_printf(b, v);
        if (strcmp(a, b) != 0)
            fail_msg("%a: fast %s, reference %s", v, a, b);
    }
}

/* ig_parse_double gives strtod's exact result on everything it accepts,
 * and refuses what is not a plain decimal number. */
static void test_parse_double_matches_strtod(void **state)
{
    static const char *const good[] = {
        "0", "-0", "+1", "1.", ".5", "-.5", "16", "0.000123", "1e5", "1E-5", "-2.5e+3",
        "123456789012345678901234567890", "0.1", "0.30000000000000004", "9007199254740993",
        "1e22", "1e23", "4.9e-324", "1.7976931348623157e308", "2.2250738585072014e-308",
        "00000000000000000000000000012.5", "3.14159265358979323846264338327950288",
        "1e400", "-1e400", "1e-400", "123.456e-7",
    };
    static const char *const bad[] = {
        "", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "inf", "nan", " 1", "1 ", "1,",
        "--1", "1e5.5",
    };
    char buf[64];
    uint64_t seed = 7;
    double v;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(ig_parse_double(good[i], strlen(good[i]), &v), 0);
        if (memcmp(&v, &(double){strtod(good[i], NULL)}, sizeof(v)) != 0)
            fail_msg("%s: %a, strtod %a", good[i], v, strtod(good[i], NULL));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ig_parse_double(bad[i], strlen(bad[i]), &v), -1);
    /* Random decimals of 1..20 digits with exponents -30..30. */
    for (int i = 0; i < 200000; i++) {
        uint64_t r = rnd(&seed);
        int nd = 1 + (int)(r % 20), dot = (int)((r >> 8) % (unsigned)(nd + 1));
        int len = 0;

        if (r & (1ull << 20))
            buf[len++] = '-';
        for (int d = 0; d < nd; d++) {
            if (d == dot)
                buf[len++] = '.';
            buf[len++] = (char)('0' + rnd(&seed) % 10);
        }
        if (r & (1ull << 21))
            len += snprintf(buf + len, 16, "e%d", (int)((r >> 24) % 61) - 30);
        buf[len] = '\0';
        assert_int_equal(ig_parse_double(buf, (size_t)len, &v), 0);
        if (v != strtod(buf, NULL))
            fail_msg("%s: %a, strtod %a", buf, v, strtod(buf, NULL));
    }
}

/* Parse a number built as <prefix> + <n> copies of <fill> + <suffix>; it
 * must read to the bits strtod gives for the whole text. */
static double parse_built(const char *prefix, char fill, size_t n, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), len = lp + n + ls;
    char *t = malloc(len + 1);
    char *exact = malloc(len); /* exact size: ASan sees any overread */
    double v = -42, ref;

    assert_non_null(t);
    assert_non_null(exact);
    memcpy(t, prefix, lp);
    memset(t + lp, fill, n);
    memcpy(t + lp + n, suffix, ls);
    t[len] = '\0';
    memcpy(exact, t, len);
    assert_int_equal(ig_parse_double(exact, len, &v), 0);
    ref = strtod(t, NULL);
    assert_memory_equal(&v, &ref, sizeof(v));
    free(exact);
    free(t);
    return v;
}

/* One random CSV field into <out>: short numbers of every shape the fast
 * paths take (signs, dots at either end, exponents, 1 to 9 bytes), longer
 * ones, and texts that are no number. Returns its length. */
static size_t random_field(uint64_t *seed, char *out)
{
    static const char *const junk[] = {
        "", "-", "+", ".", "-.", "e5", "1e", "1e+", "1.2.3", " 1", "1 ", "\"1\"", "1\r",
        "0x10", "inf", "nan", "--1", "1e5.5", "1.e", "12345678.9.", "1234567890",
        "0.1234567", "12345678", "123456789", "1e-23", "1e23", "9e22", "1.5E3", "+.5e-2",
    };
    uint64_t r = rnd(seed);
    size_t len = 0;

    switch (r % 8) {
    case 0:
        strcpy(out, junk[(r >> 8) % (sizeof(junk) / sizeof(junk[0]))]);
        return strlen(out);
    case 1: /* any digits, a dot anywhere, an exponent maybe: up to 20 */
    case 2:
    case 3: {
        int nd = 1 + (int)((r >> 8) % (r % 8 == 1 ? 20 : 8));
        int dot = (int)((r >> 16) % (unsigned)(nd + 2)) - 1; /* -1: none */

        if (r & (1ull << 30))
            out[len++] = (r & (1ull << 31)) ? '-' : '+';
        for (int d = 0; d < nd; d++) {
            if (d == dot)
                out[len++] = '.';
            out[len++] = (char)('0' + rnd(seed) % 10);
        }
        if (dot == nd)
            out[len++] = '.';
        if (r & (1ull << 32))
            len += (size_t)sprintf(out + len, "%c%d", (r & (1ull << 33)) ? 'e' : 'E',
                                   (int)((r >> 40) % 61) - 30);
        out[len] = '\0';
        return len;
    }
    default: /* the shapes of the benchmark: short decimals */
        return (size_t)sprintf(out, "%s%d.%0*d", (r >> 8) & 1 ? "-" : "",
                               (int)((r >> 9) % 1000), 1 + (int)((r >> 20) % 6),
                               (int)((r >> 24) % 1000000));
    }
}

/* ig_parse_double_field and ig_parse_double_row give exactly what
 * ig_parse_double gives on the slices up to each separator (itself checked
 * against strtod), on rows held in buffers of their exact size (ASan sees
 * any read past them). */
static void test_parse_double_field_and_row(void **state)
{
    uint64_t seed = 1818;
    char text[512];

    (void)state;
    for (int i = 0; i < 100000; i++) {
        size_t n = 0, nf = 1 + rnd(&seed) % 6, count = 99, k = 0;
        double want[8], got[8];
        int all = 1, rv;
        char *row;

        for (size_t f = 0; f < nf; f++) {
            n += random_field(&seed, text + n);
            if (f + 1 < nf)
                text[n++] = ',';
        }
        row = malloc(n > 0 ? n : 1);
        assert_non_null(row);
        memcpy(row, text, n);
        text[n] = '\0';
        for (size_t p = 0;; p++) {
            const char *e = memchr(row + p, ',', n - p);
            size_t flen = e ? (size_t)(e - (row + p)) : n - p, len = 12345;
            double v = -1, ref = -2;
            int rf = ig_parse_double(row + p, flen, &ref);
            int r = ig_parse_double_field(row + p, n - p, ',', &len, &v);

            if (r != rf || len != flen || (r == 0 && memcmp(&v, &ref, sizeof(v)) != 0))
                fail_msg("field %zu of '%s': %d %zu %a, ig_parse_double %d %zu %a", k, text, r,
                         len, v, rf, flen, ref);
            if (rf == 0) {
                char tmp[512];

                memcpy(tmp, row + p, flen);
                tmp[flen] = '\0';
                if (memcmp(&ref, &(double){strtod(tmp, NULL)}, sizeof(ref)) != 0)
                    fail_msg("'%s': %a, strtod %a", tmp, ref, strtod(tmp, NULL));
            }
            all &= rf == 0 && isfinite(ref);
            want[k++] = ref;
            p += flen;
            if (p == n)
                break;
        }
        rv = ig_parse_double_row(row, n, ',', got, 8, &count);
        if (rv != (all ? 0 : -1))
            fail_msg("row '%s': %d", text, rv);
        if (rv == 0 && (count != k || memcmp(got, want, k * sizeof(double)) != 0))
            fail_msg("row '%s': %zu values, not %zu, or others", text, count, k);
        /* a cap below the count refuses the row */
        if (rv == 0 && ig_parse_double_row(row, n, ',', got, k - 1, &count) != -1)
            fail_msg("row '%s': more than %zu values taken", text, k - 1);
        free(row);
    }
}

/* Numbers of any length are read, correctly rounded, in bounded space. */
static void test_parse_double_any_length(void **state)
{
    char big[401];

    (void)state;
    /* 0.000...0001 with 300 zeros */
    assert_true(parse_built("0.", '0', 300, "1") == 1e-301);
    assert_true(parse_built("-0.", '0', 300, "1") == -1e-301);
    /* 400 digits: strtod's result */
    for (int i = 0; i < 400; i++)
        big[i] = (char)('1' + i % 9);
    big[400] = '\0';
    assert_true(parse_built(big, '0', 0, "") == HUGE_VAL);
    assert_true(fabs(parse_built(big, '0', 0, "e-399") - 1.23456789) < 1e-8);
    assert_true(isfinite(parse_built(big, '7', 5000, "e-5300")));
    /* 2^53 + 1 is the midpoint between two doubles: exactly it rounds to
     * even (down); any nonzero digit, however far out, rounds it up. */
    assert_true(parse_built("9007199254740993.", '0', 5000, "") == 9007199254740992.0);
    assert_true(parse_built("9007199254740993.", '0', 5000, "1") == 9007199254740994.0);
    assert_true(parse_built("900719925474099.3", '0', 5000, "1e1") == 9007199254740994.0);
    /* leading zeros and an exponent that brings them back */
    assert_true(parse_built("", '0', 6000, "1.5") == 1.5);
    assert_true(parse_built("0.", '0', 6000, "15e6001") == 1.5);
    assert_true(parse_built("-", '0', 6000, "") == 0.0);
    assert_true(signbit(parse_built("-", '0', 6000, "")));
    /* far out of range either way, with a long mantissa */
    assert_true(parse_built("1", '0', 5000, "") == HUGE_VAL);
    assert_true(parse_built("0.", '0', 5000, "1") == 0.0);
    assert_true(parse_built("1", '0', 5000, "e-99999999") == 0.0);
    assert_true(parse_built("0.", '0', 5000, "1e99999999") == HUGE_VAL);
    /* and the grammar holds at any length */
    {
        static const char *const tails[] = {"x", "e", "e+", "e-", " ", "..", ".5.", "1e5e5", "-"};
        static const char *const heads[] = {"", "-", "+", ".", "+-", "1.", "-.", "x"};
        char *t = malloc(600 + 8);
        double v;

        assert_non_null(t);
        for (size_t i = 0; i < IG_ARRAY_SIZE(tails); i++) {
            size_t n = 0;

            memset(t, '7', 600);
            n = 600;
            memcpy(t + n, tails[i], strlen(tails[i]));
            n += strlen(tails[i]);
            if (ig_parse_double(t, n, &v) != -1)
                fail_msg("600 digits then '%s' accepted", tails[i]);
        }
        for (size_t i = 0; i < IG_ARRAY_SIZE(heads); i++) {
            size_t hl = strlen(heads[i]);

            memcpy(t, heads[i], hl);
            memset(t + hl, '.', 600);
            if (ig_parse_double(t, hl + 600, &v) != -1)
                fail_msg("'%s' then 600 dots accepted", heads[i]);
            memset(t + hl, '5', 600);
            if (ig_parse_double(t, hl + 600, &v) != (i == 4 || i == 7 ? -1 : 0))
                fail_msg("'%s' then 600 digits", heads[i]);
        }
        free(t);
    }
}

/*
 * One random value of the million, of kind <i % 20>: random bits (1 in
 * 20 anywhere, 3 in 20 with an exponent within 2^+-60), short decimals
 * (7: "12.345", "-0.000123", "7"), integers of 1 to 19 digits (4), far
 * exponents ("123e-250", 2), powers of two and their neighbours (2, one of
 * them anywhere), a float's value as a double (1). Sets *text to a decimal
 * spelling that strtod reads as the value when the kind is made from one,
 * else to NULL.
 */
static double million_value(uint64_t *seed, int i, char *text, size_t size, const char **ptext)
{
    uint64_t r = rnd(seed), r2 = rnd(seed);
    const char *sign = (r2 & 1) ? "-" : "";
    int kind = i % 20;
    double v;

    *ptext = NULL;
    if (kind <= 3) { /* random bits; NaN and infinities too */
        if (kind > 0)
            r = (r & 0x800fffffffffffffull) | ((uint64_t)(1023 - 60 + (r2 >> 1) % 121) << 52);
        memcpy(&v, &r, sizeof(v));
        return v;
    }
    if (kind <= 10) { /* a short decimal */
        uint64_t m = r % 10000000, p10 = 1;
        int frac = (int)((r >> 32) % 9);

        for (int j = 0; j < frac; j++)
            p10 *= 10;
        if (frac == 0)
            snprintf(text, size, "%s%llu", sign, (unsigned long long)m);
        else
            snprintf(text, size, "%s%llu.%0*llu", sign, (unsigned long long)(m / p10), frac,
                     (unsigned long long)(m % p10));
    } else if (kind <= 14) { /* an integer of 1 to 19 digits */
        uint64_t lim = 10;

        for (uint64_t j = (r2 >> 1) % 19; j > 0; j--)
            lim *= 10;
        snprintf(text, size, "%s%llu", sign, (unsigned long long)(r % lim));
    } else if (kind <= 16) { /* a far exponent: 1e-330 .. 1e+315 */
        snprintf(text, size, "%s%llue%d", sign, (unsigned long long)(r % 100000000),
                 (int)((r2 >> 1) % 646) - 330);
    } else if (kind <= 18) { /* a power of two, or a few ulps off it */
        v = kind == 17 ? ldexp(1.0, (int)(r % 2098) - 1074) : ldexp(1.0, (int)(r % 121) - 60);
        for (uint64_t j = 0; j < (r2 >> 1) % 4; j++)
            v = nextafter(v, (r2 & 2) ? 0 : INFINITY);
        return (r2 & 1) ? -v : v;
    } else { /* a float's value: 0.1f is 0.10000000149011612 */
        return (double)(float)((double)(int64_t)(r % 20000001 - 10000000) /
                               (double)(1ull << (r2 >> 1) % 24));
    }
    *ptext = text;
    return strtod(text, NULL);
}

/* The significant digits of a number's text: those before any 'e',
 * without the sign, the dot, and leading and trailing zeros. */
static int sig_digits(const char *s)
{
    int n = 0, zeros = 0, lead = 1;

    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (lead && *s == '0')
            continue;
        lead = 0;
        n++;
        zeros = *s == '0' ? zeros + 1 : 0;
    }
    return n - zeros;
}

/* A float's text reads back to it through strtof and through the double
 * parser (strtod's result, tested here too) narrowed to float. */
static int float_reads_back(const char *s, float f)
{
    double d;

    if (ig_parse_double(s, strlen(s), &d) < 0)
        return 0;
    return (float)d == f && strtof(s, NULL) == f;
}

/*
 * One million random values (fixed seed, million_value), each through the
 * three number paths: ig_parse_double gives strtod's bits (on the value's
 * own text and on ig_fmt_double's); ig_fmt_double gives the printf
 * reference's text (compared where ig_fmt_double has its own integer
 * path, about 1e-37 <= |v| < 1e46: elsewhere it is that reference) and
 * strtod reads it back; ig_fmt_float reads back through strtof and
 * through the double parser, and no "%.{p}g" (nearest at p digits)
 * shorter than it does. Shorter-is-absent is checked at p = its length - 1
 * only, except at powers of two: away from them the interval that reads
 * back is symmetric around the value, so a nearest decimal that reads back
 * at p digits implies one at p + 1, and one check covers every shorter p.
 */
static void test_numbers_million_random(void **state)
{
    char text[80], a[IG_FMT_DOUBLE_MAX], ref[IG_FMT_DOUBLE_MAX], fa[IG_FMT_FLOAT_MAX], g[320];
    uint64_t seed = 20261201;
    long bad = 0;

    (void)state;
    for (int i = 0; i < 1000000 && bad < 20; i++) {
        const char *ptext;
        double v = million_value(&seed, i, text, sizeof(text), &ptext), p, back;
        float f;
        int nd;

        /* the double format, read back by strtod */
        ig_fmt_double(a, v);
        back = strtod(a, NULL);
        if (isfinite(v) && (memcmp(&back, &v, sizeof(v)) != 0 || sig_digits(a) > 17)) {
            print_error("fmt_double %a: %s reads back as %a\n", v, a, back);
            bad++;
        }
        /* and it is the printf reference's text */
        if (fabs(v) >= 1e-37 && fabs(v) < 1e46) {
            ig_fmt_double_printf(ref, v);
            if (strcmp(a, ref) != 0) {
                print_error("fmt_double %a: %s, printf reference %s\n", v, a, ref);
                bad++;
            }
        }
        /* the parser: exactly strtod's bits, on the value's own spelling
         * and on ig_fmt_double's (strtod read it as <back>) */
        if (ptext && (ig_parse_double(ptext, strlen(ptext), &p) != 0 ||
                      memcmp(&p, &v, sizeof(p)) != 0)) {
            print_error("parse %s: %a, strtod %a\n", ptext, p, v);
            bad++;
        }
        if (isfinite(v) &&
            (ig_parse_double(a, strlen(a), &p) != 0 || memcmp(&p, &back, sizeof(p)) != 0)) {
            print_error("parse %s: %a, strtod %a\n", a, p, back);
            bad++;
        }
        /* the float format: random bits are a float's own bits */
        if (i % 20 <= 3) {
            uint32_t fb = (uint32_t)(seed >> 11);

            memcpy(&f, &fb, sizeof(f));
        } else {
            f = (float)v;
        }
        ig_fmt_float(fa, f);
        if (!isfinite(f)) {
            const char *want = isnan(f) ? "NaN" : f > 0 ? "Infinity" : "-Infinity";

            if (strcmp(fa, want) != 0) {
                print_error("fmt_float %a: %s\n", (double)f, fa);
                bad++;
            }
            continue;
        }
        if (!float_reads_back(fa, f)) {
            print_error("fmt_float %a: %s does not read back\n", (double)f, fa);
            bad++;
            continue;
        }
        nd = sig_digits(fa);
        if (f != 0) {
            int e2, all;

            frexpf(f, &e2);
            all = ldexpf(1.0f, e2 - 1) == fabsf(f); /* a power of two */
            for (int prec = all ? 1 : nd - 1; prec >= 1 && prec < nd; prec++) {
                snprintf(g, sizeof(g), "%.*g", prec, (double)f);
                if (float_reads_back(g, f)) {
                    print_error("fmt_float %a: %s, but %s reads back\n", (double)f, fa, g);
                    bad++;
                }
            }
        }
        if (nd > 9) {
            print_error("fmt_float %a: %s has %d digits\n", (double)f, fa, nd);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* Float formatting: the layout, the values around the double-rounding
 * trap, and the integer path against the printf reference. */
static void test_fmt_float(void **state)
{
    static const struct {
        float v;
        const char *want;
    } fcases[] = {
        {0.1f, "0.1"},
        {12.5f, "12.5"},
        {-12.345f, "-12.345"},
        {3e-05f, "3e-05"},
        {0.0001f, "0.0001"},
        {9.999e-05f, "9.999e-05"},
        {0.123456f, "0.123456"},
        {1.0f, "1.0"},
        {100.0f, "100.0"},
        {16777216.0f, "16777216.0"},
        {123456789.0f, "123456790.0"},
        {1e10f, "10000000000.0"},
        {1e15f, "1000000000000000.0"},
        {1e16f, "1e+16"},
        {0x1.fffffep+127f, "3.4028235e+38"},
        {0x1p-126f, "1.1754944e-38"},
        {0x1p-149f, "1e-45"},
        {0.0f, "0.0"},
        {-0.0f, "-0.0"},
        /* strtof's shortest, "7.038531e-26", reads back through a double
         * as the next float: one digit more */
        {0x1.5c87fap-84f, "7.0385307e-26"},
    };
    char a[IG_FMT_FLOAT_MAX], b[IG_FMT_FLOAT_MAX];
    struct ig_buf buf;
    uint64_t seed = 18;

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(fcases); i++) {
        size_t n = ig_fmt_float(a, fcases[i].v);

        assert_string_equal(a, fcases[i].want);
        assert_int_equal(n, strlen(a));
        ig_fmt_float_printf(b, fcases[i].v);
        assert_string_equal(b, fcases[i].want);
    }
    ig_fmt_float(a, NAN);
    assert_string_equal(a, "NaN");
    ig_fmt_float(a, -INFINITY);
    assert_string_equal(a, "-Infinity");
    /* "7.038531e-26" is strtof's float, not the double parser's */
    {
        double d;

        assert_int_equal(ig_parse_double("7.038531e-26", 12, &d), 0);
        assert_true(strtof("7.038531e-26", NULL) == 0x1.5c87fap-84f);
        assert_true((float)d != 0x1.5c87fap-84f);
    }
    /* the integer path and the printf path agree, and no shorter "%.*g"
     * reads back (every length tried): random floats of every exponent,
     * short decimals, powers of two and their neighbours, and floats
     * next to decimals of 6 to 8 digits over a wide range (the 6- and
     * 7-digit ways of the fast path) */
    for (int i = 0; i < 60000; i++) {
        uint64_t r = rnd(&seed);
        uint32_t bits = (uint32_t)r;
        float f;

        switch (i % 4) {
        case 0:
            memcpy(&f, &bits, sizeof(f));
            break;
        case 1:
            f = (float)((double)(r % 10000000) / pow(10, (double)((r >> 40) % 12)));
            break;
        case 3:
            f = (float)((double)(100000 + r % 99900000) * pow(10, (double)((r >> 40) % 60) - 40));
            for (uint64_t j = (r >> 50) % 3; j > 0; j--)
                f = nextafterf(f, (r & 1) ? 0 : INFINITY);
            break;
        default:
            f = nextafterf(ldexpf(1.0f, (int)((r >> 8) % 276) - 149), (r & 1) ? 0 : INFINITY);
            if (r & 2)
                f = ldexpf(1.0f, (int)((r >> 8) % 276) - 149);
            break;
        }
        ig_fmt_float(a, f);
        ig_fmt_float_printf(b, f);
        if (strcmp(a, b) != 0)
            fail_msg("%a: fast %s, reference %s", (double)f, a, b);
        if (!isfinite(f))
            continue;
        if (!float_reads_back(a, f))
            fail_msg("%a: %s does not read back", (double)f, a);
        for (int p = 1; p < sig_digits(a); p++) {
            char g[320];

            snprintf(g, sizeof(g), "%.*g", p, (double)f);
            if (float_reads_back(g, f))
                fail_msg("%a: %s, but %s reads back", (double)f, a, g);
        }
    }
    ig_buf_init(&buf, 8);
    assert_int_equal(ig_buf_append_float(&buf, 0.5f), 0);
    assert_string_equal(buf.data, "0.5");
    assert_int_equal(ig_buf_append_float(&buf, 0.12345f), IG_ERR_TOOBIG);
    assert_string_equal(buf.data, "0.5");
    ig_buf_clear(&buf);
}

static void test_buf_cap(void **state)
{
    struct ig_buf b;

    (void)state;
    ig_buf_init(&b, 8);
    assert_int_equal(ig_buf_append_str(&b, "12345678"), 0);
    assert_int_equal(ig_buf_append_char(&b, '9'), IG_ERR_TOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    ig_buf_reset(&b);
    assert_int_equal(ig_buf_printf(&b, "%d-%s", 42, "ab"), 0);
    assert_string_equal(b.data, "42-ab");
    assert_int_equal(ig_buf_printf(&b, "%s", "toolong"), IG_ERR_TOOBIG);
    assert_string_equal(b.data, "42-ab");
    assert_int_equal(ig_buf_append_double(&b, 2.5), 0);
    assert_string_equal(b.data, "42-ab2.5");
    ig_buf_clear(&b);
    assert_null(b.data);
}

static void test_buf_take(void **state)
{
    struct ig_buf b;
    size_t len;
    char *p;

    (void)state;
    ig_buf_init(&b, 1024);
    p = ig_buf_take(&b, &len);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    ig_free(&p);
    assert_int_equal(ig_buf_append(&b, "abc", 3), 0);
    p = ig_buf_take(&b, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "abc", 3);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    ig_free(&p);
}

static void test_fmt_u64(void **state)
{
    static const struct {
        uint64_t v;
        const char *text;
    } u64_cases[] = {{0, "0"}, {7, "7"}, {10, "10"}, {4294967296ull, "4294967296"},
                     {UINT64_MAX, "18446744073709551615"}};
    char out[IG_FMT_U64_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(u64_cases) / sizeof(u64_cases[0]); i++) {
        size_t n;

        memset(out, 'x', sizeof(out));
        n = ig_fmt_u64(out, u64_cases[i].v);
        assert_int_equal(n, strlen(u64_cases[i].text));
        assert_memory_equal(out, u64_cases[i].text, n);
        assert_int_equal(out[n], 'x'); /* nothing written past it */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grown_cap),
        cmocka_unit_test(test_fmt_u64),
        cmocka_unit_test(test_fmt_double_matches_python_repr),
        cmocka_unit_test(test_fmt_double_nonfinite),
        cmocka_unit_test(test_fmt_double_repr_table),
        cmocka_unit_test(test_fmt_double_fast_path_matches_reference),
        cmocka_unit_test(test_parse_double_matches_strtod),
        cmocka_unit_test(test_parse_double_any_length),
        cmocka_unit_test(test_parse_double_field_and_row),
        cmocka_unit_test(test_fmt_float),
        cmocka_unit_test(test_numbers_million_random),
        cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_buf_take),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
