/* codec_test.h - assertions shared by the codec unit tests. Include after
 * <cmocka.h>. */
#ifndef INFERGATE_TESTS_CODEC_TEST_H
#define INFERGATE_TESTS_CODEC_TEST_H

#include "infergate/codec.h"

/* Decoding <body> fails with <code>, the exact <msg> at <row>, and leaves
 * the rowset empty (nothing to free) but pointing at the body. */
static inline void dec_fail_n(enum ig_format fmt, const char *body, size_t len, uint32_t dim,
                              uint32_t max_rows, int code, uint32_t row, const char *msg)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err = {99, "unset"};

    assert_int_equal(ig_codec_decode(fmt, body, len, dim, max_rows, &rs, &err), code);
    assert_string_equal(err.msg, msg);
    assert_int_equal(err.row, row);
    assert_null(rs.rows);
    assert_null(rs.features);
    assert_int_equal(rs.nrows, 0);
    assert_ptr_equal(rs.body, body);
    assert_int_equal(rs.body_len, len);
}

#endif /* INFERGATE_TESTS_CODEC_TEST_H */
