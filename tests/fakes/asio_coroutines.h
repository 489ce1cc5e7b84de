#pragma once

// Boost 1.74 turns C++20 coroutines on for GCC only; Clang (clang-tidy
// included) supports them with libstdc++'s <coroutine> just as well.
// Included before any Asio header by the fakes that use co_await.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#define BOOST_ASIO_HAS_STD_COROUTINE 1
#endif
